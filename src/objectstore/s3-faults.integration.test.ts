import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { createBucket, freePort, s3Client, testS3, type TestS3 } from '../../e2e/support/s3-server';
import { isObjectStoreError, type ObjectStoreErrorCode } from './errors';
import { S3Store, type S3StoreOptions } from './s3';
import { MIN_PART_SIZE } from './store';

/** The error a promise rejects with, checked to be an ObjectStoreError of `code` that leaks no secret. */
async function failure(promise: Promise<unknown>, code: ObjectStoreErrorCode, secrets: string[]): Promise<Error> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!isObjectStoreError(error, code)) throw new Error(`expected ObjectStoreError ${code}, got ${inspect(error)}`);
  for (const secret of secrets) {
    expect(error.message).not.toContain(secret);
    expect(inspect(error, { depth: 5 })).not.toContain(secret);
  }
  return error;
}

describe('S3Store against failures of the real S3-compatible server', () => {
  let server: TestS3;
  let bucket: string;
  const stores: S3Store[] = [];
  const open = (options: Partial<S3StoreOptions> = {}): S3Store => {
    const store = new S3Store({
      bucket,
      endpoint: server.endpoint,
      region: server.region,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      ...options,
    }, {});
    stores.push(store);
    return store;
  };
  beforeAll(async () => {
    server = testS3();
    bucket = await createBucket(server, 'faults');
  });
  afterAll(() => stores.forEach((store) => store.close()));

  it('fails fast with AccessDenied on wrong credentials, without leaking them', async () => {
    const wrong = { accessKeyId: 'AKIAWRONGWRONG', secretAccessKey: 'wrong-secret-do-not-print' };
    const store = open({ credentials: wrong });
    const started = Date.now();
    const error = await failure(store.checkBucket(), 'AccessDenied', [wrong.secretAccessKey, wrong.accessKeyId, server.secretAccessKey]);
    expect(error.message).toMatch(/check the credentials/);
    await failure(store.get('any/key'), 'AccessDenied', [wrong.secretAccessKey, wrong.accessKeyId]);
    await failure(store.put('any/key', Buffer.from('x')), 'AccessDenied', [wrong.secretAccessKey, wrong.accessKeyId]);
    expect(Date.now() - started).toBeLessThan(2000);

    const wrongSecret = open({ credentials: { accessKeyId: server.accessKeyId, secretAccessKey: 'another-wrong-secret' } });
    await failure(wrongSecret.list({ prefix: '' }), 'AccessDenied', ['another-wrong-secret', server.secretAccessKey]);
  });

  it('reports Unavailable within a bounded time when nothing listens', async () => {
    const port = await freePort();
    const store = open({ endpoint: `http://127.0.0.1:${port}`, maxAttempts: 2, requestTimeoutMs: 1000 });
    const started = Date.now();
    const error = await failure(store.head('some/key'), 'Unavailable', [server.secretAccessKey, server.accessKeyId]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).toMatch(/ECONNREFUSED/);
    expect(error.message).toMatch(/reachable/);
  });

  it('reports NoSuchBucket for a bucket that does not exist', async () => {
    const store = open({ bucket: `${bucket}-missing` });
    const checked = await failure(store.checkBucket(), 'NoSuchBucket', [server.secretAccessKey]);
    expect(checked.message).toContain(`s3://${bucket}-missing`);
    await failure(store.list({ prefix: '' }), 'NoSuchBucket', [server.secretAccessKey]);
    await failure(store.put('k', Buffer.from('x')), 'NoSuchBucket', [server.secretAccessKey]);
  });

  it('leaves no object when a multipart upload fails to complete, and abort cleans up its parts', async () => {
    const store = open();
    const upload = await store.createMultipartUpload('fail/object.bin');
    await upload.uploadPart(1, Buffer.alloc(1024, 1));
    await upload.uploadPart(2, Buffer.alloc(MIN_PART_SIZE, 2));
    await failure(upload.complete(), 'InvalidArgument', [server.secretAccessKey]);
    await upload.abort();
    await upload.abort();
    await failure(store.head('fail/object.bin'), 'NotFound', []);
    const raw = s3Client(server);
    try {
      const pending = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'fail/' }));
      expect(pending.Uploads ?? []).toEqual([]);
    } finally {
      raw.destroy();
    }
  });

  it('aborts the upload when put() of a stream fails midway', async () => {
    const store = open();
    async function* broken() {
      yield Buffer.alloc(9 * 1024 * 1024, 7);
      throw new Error('source disk went away');
    }
    const error = await failure(store.put('stream/object.bin', Readable.from(broken())), 'Internal', []);
    expect(error.message).toMatch(/source stream failed/);
    await failure(store.head('stream/object.bin'), 'NotFound', []);
    const raw = s3Client(server);
    try {
      const pending = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'stream/' }));
      expect(pending.Uploads ?? []).toEqual([]);
    } finally {
      raw.destroy();
    }
  });

  it('copies above the multipart threshold with UploadPartCopy, keeping metadata', async () => {
    const store = open({ multipartCopyThresholdBytes: MIN_PART_SIZE, copyPartBytes: MIN_PART_SIZE });
    const data = Buffer.alloc(2 * MIN_PART_SIZE + 4321);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    await store.put('big/source.bin', data, { metadata: { step: '1200' }, contentType: 'application/octet-stream' });
    const info = await store.copy('big/source.bin', 'big/copy.bin');
    expect(info.size).toBe(data.length);
    expect(info.etag).toMatch(/-3$/);
    const head = await store.head('big/copy.bin');
    expect(head).toMatchObject({ size: data.length, metadata: { step: '1200' } });
    const chunks: Buffer[] = [];
    for await (const chunk of (await store.get('big/copy.bin')).body) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    await failure(store.copy('big/missing.bin', 'big/never.bin'), 'NotFound', []);
  });
});
