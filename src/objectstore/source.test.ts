import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isObjectStoreError } from './errors';
import { LocalDirStore } from './local-dir';
import { S3Store } from './s3';
import { openSource } from './source';
import { bucketNameProblem, parseS3Url } from './s3-url';

describe('parseS3Url', () => {
  it.each([
    ['s3://bucket', 'bucket', ''],
    ['s3://bucket/', 'bucket', ''],
    ['s3://bucket/models', 'bucket', 'models/'],
    ['s3://bucket/models/llama/', 'bucket', 'models/llama/'],
    ['S3://my.bucket-1/a b/c', 'my.bucket-1', 'a b/c/'],
  ])('%s → bucket %s, prefix %j', (url, bucket, prefix) => {
    expect(parseS3Url(url)).toEqual({ bucket, prefix });
  });

  it.each([
    ['s3://', /names no bucket/],
    ['s3:///prefix', /names no bucket/],
    ['s3://Bucket/x', /not a valid bucket name/],
    ['s3://ab', /3 to 63/],
    ['s3://a_b', /lower-case/],
    ['s3://a..b', /adjacent dots/],
    ['s3://192.168.1.1', /IP address/],
    ['s3://user:secret@bucket/x', /not a valid bucket name/],
    ['s3://bucket//x', /empty path segment/],
  ])('rejects %s', (url, message) => {
    expect(() => parseS3Url(url)).toThrow(message);
  });

  it('knows the bucket naming rules', () => {
    expect(bucketNameProblem('training-data.v2')).toBeUndefined();
    expect(bucketNameProblem('-start')).toBeDefined();
    expect(bucketNameProblem('x'.repeat(64))).toBeDefined();
    expect(bucketNameProblem('xn--bucket')).toBeDefined();
  });
});

describe('openSource', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-source-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('opens an S3 URL as an S3Store with the normalised prefix, configured from env', () => {
    const { store, prefix } = openSource('s3://datasets/imagenet', { AWS_ENDPOINT_URL: 'http://minio.local:9000', AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'shh' });
    try {
      expect(store).toBeInstanceOf(S3Store);
      expect(prefix).toBe('imagenet/');
      expect(store.location).toBe('s3://datasets at minio.local:9000');
      expect(store.location).not.toMatch(/AKIA|shh/);
    } finally {
      store.close();
    }
  });

  it('opens an absolute or relative folder as a LocalDirStore with an empty prefix', () => {
    const absolute = openSource(dir);
    expect(absolute.store).toBeInstanceOf(LocalDirStore);
    expect(absolute.prefix).toBe('');
    expect((absolute.store as LocalDirStore).root).toBe(dir);
    const relative = openSource(path.relative(process.cwd(), dir));
    expect((relative.store as LocalDirStore).root).toBe(dir);
  });

  it('explains a missing folder, a file, an unknown scheme, a malformed S3 URL and an empty source', () => {
    const file = path.join(dir, 'file.txt');
    fs.writeFileSync(file, 'x');
    const cases: Array<[string, RegExp]> = [
      [path.join(dir, 'missing'), /does not exist: create it/],
      [file, /is not a folder/],
      ['gs://bucket/x', /scheme gs:\/\/ is not supported/],
      ['s3:/bucket/x', /malformed S3 URL/],
      ['', /empty source/],
    ];
    for (const [source, message] of cases) {
      let error: unknown;
      try {
        openSource(source);
      } catch (e) {
        error = e;
      }
      expect(isObjectStoreError(error, 'InvalidArgument')).toBe(true);
      expect((error as Error).message).toMatch(message);
    }
  });
});
