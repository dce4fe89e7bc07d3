import { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { amzDate, SigV4Signer } from './sigv4';

describe('SigV4Signer', () => {
  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
  const date = new Date('2026-12-06T07:30:05.123Z');
  const headers = { host: 'bucket.example.com:9000', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', range: 'bytes=0-65535', 'if-match': '"abc  def"' };

  async function sdkSigned(path: string, withToken: boolean): Promise<Record<string, string>> {
    const signer = new SignatureV4({
      credentials: withToken ? { ...credentials, sessionToken: 'TOKEN/with+chars=' } : credentials,
      region: 'eu-west-3', service: 's3', sha256: new S3Client({ region: 'eu-west-3' }).config.sha256, uriEscapePath: false, applyChecksum: false,
    });
    const signed = await signer.sign({ method: 'GET', protocol: 'http:', hostname: 'bucket.example.com', port: 9000, path, query: {}, headers: { ...headers } }, { signingDate: date });
    return signed.headers;
  }

  it('signs exactly as the SDK does, with and without a session token', async () => {
    const signer = new SigV4Signer('eu-west-3', 's3');
    for (const withToken of [false, true]) {
      const path = '/bucket/dir%20one/file%2B1.bin';
      const ours = signer.sign({ method: 'GET', path, query: '', headers }, withToken ? { ...credentials, sessionToken: 'TOKEN/with+chars=' } : credentials, date);
      expect(ours).toEqual(await sdkSigned(path, withToken));
    }
  });

  it('derives a new key when the day or the secret changes', async () => {
    const signer = new SigV4Signer('eu-west-3', 's3');
    const request = { method: 'GET', path: '/bucket/k', query: '', headers };
    const today = signer.sign(request, credentials, date).authorization;
    const tomorrow = signer.sign(request, credentials, new Date('2026-12-07T07:30:05Z')).authorization;
    const rotated = signer.sign(request, { ...credentials, secretAccessKey: 'another' }, date).authorization;
    expect(new Set([today, tomorrow, rotated]).size).toBe(3);
    expect(signer.sign(request, credentials, date).authorization).toBe(today);
  });

  it('writes the time in basic ISO 8601 form', () => {
    expect(amzDate(date)).toBe('20261206T073005Z');
  });
});
