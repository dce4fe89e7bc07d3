import { checkRegionEnv, endpointFromEnv } from './s3-env';
import { S3Store } from './s3';

describe('endpointFromEnv', () => {
  it('reads AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, unless told to ignore them', () => {
    expect(endpointFromEnv({ AWS_ENDPOINT_URL: 'http://minio:9000', AWS_ENDPOINT_URL_S3: 'https://s3.example' })).toBe('https://s3.example');
    expect(endpointFromEnv({ AWS_ENDPOINT_URL: 'http://minio:9000' })).toBe('http://minio:9000');
    expect(endpointFromEnv({ AWS_ENDPOINT_URL: 'http://minio:9000', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' })).toBeUndefined();
    expect(endpointFromEnv({})).toBeUndefined();
  });

  it('names the variable and the fix when the endpoint has no scheme', () => {
    expect(() => endpointFromEnv({ AWS_ENDPOINT_URL: '127.0.0.1:9000' })).toThrow(
      'AWS_ENDPOINT_URL=127.0.0.1:9000 is not an http:// or https:// URL: give the scheme too, e.g. AWS_ENDPOINT_URL=http://127.0.0.1:9000 (https:// for TLS)',
    );
    // A host:port parses as a URL whose scheme is the host: still no http(s).
    expect(() => endpointFromEnv({ AWS_ENDPOINT_URL_S3: 'minio:9000' })).toThrow('AWS_ENDPOINT_URL_S3=minio:9000 is not an http:// or https:// URL: give the scheme too, e.g. AWS_ENDPOINT_URL_S3=http://minio:9000');
    expect(() => endpointFromEnv({ AWS_ENDPOINT_URL: 'ftp://minio:9000' })).toThrow('e.g. AWS_ENDPOINT_URL=http://127.0.0.1:9000');
  });
});

describe('checkRegionEnv', () => {
  it('takes a region or none, and refuses an empty AWS_REGION with what to put there', () => {
    expect(() => checkRegionEnv({ AWS_REGION: 'eu-west-1' })).not.toThrow();
    expect(() => checkRegionEnv({})).not.toThrow();
    for (const empty of ['', ' ']) expect(() => checkRegionEnv({ AWS_REGION: empty })).toThrow(/^AWS_REGION is set but empty: set it to the bucket's region \(e\.g\. AWS_REGION=us-east-1/);
  });

  it('is what an S3Store built from such an environment says', () => {
    expect(() => new S3Store({ bucket: 'b' }, { AWS_REGION: '', AWS_ENDPOINT_URL: 'http://127.0.0.1:9000' })).toThrow(/^AWS_REGION is set but empty/);
    expect(() => new S3Store({ bucket: 'b' }, { AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: '127.0.0.1:9000' })).toThrow(/^AWS_ENDPOINT_URL=127\.0\.0\.1:9000 is not an http/);
    expect(new S3Store({ bucket: 'b', region: 'eu-west-1' }, { AWS_REGION: '' }).bucket).toBe('b');
  });
});
