import { settingsFromSecrets, settingsToEnvironment } from './secrets';

describe('CSI secrets', () => {
  const full = { accessKeyID: 'AKIAEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI', endpoint: 'http://127.0.0.1:9000', region: 'eu-west-1' };

  it('reads the S3 CSI key names', () => {
    expect(settingsFromSecrets(full)).toEqual({
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI' },
    });
  });

  it('treats empty secrets as "use the plugin environment"', () => {
    expect(settingsFromSecrets({})).toEqual({});
    expect(settingsFromSecrets(undefined)).toEqual({});
  });

  it('rejects half a key pair without echoing the value', () => {
    expect(() => settingsFromSecrets({ accessKeyID: 'AKIAEXAMPLE' })).toThrow(/both accessKeyID and secretAccessKey/);
    try {
      settingsFromSecrets({ secretAccessKey: 'wJalrXUtnFEMI' });
    } catch (error) {
      expect(String((error as Error).message)).not.toContain('wJalrXUtnFEMI');
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect.assertions(3);
  });

  it.each(['ftp://x', 'not a url', 'http://user:pass@host'])('rejects endpoint %s', (endpoint) => {
    expect(() => settingsFromSecrets({ endpoint })).toThrow(/http:\/\/ or https:\/\/ URL/);
  });

  it('passes settings to a mount process as the standard AWS variables', () => {
    expect(settingsToEnvironment(settingsFromSecrets(full))).toEqual({
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9000',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI',
    });
  });
});
