import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { freePort, s3Client } from '../../e2e/support/s3-server';
import { MIN_PART_SIZE } from './store';
import { storeFailure, testStores } from '../../e2e/support/test-stores';

describe('S3Store against failures of the real S3-compatible server', () => {
  const fixture = testStores('faults');
  const open = fixture.open;

  it('fails fast with AccessDenied on wrong credentials, without leaking them', async () => {
    const wrong = { accessKeyId: 'AKIAWRONGWRONG', secretAccessKey: 'wrong-secret-do-not-print' };
    const store = open({ credentials: wrong });
    const started = Date.now();
    const error = await storeFailure(store.checkBucket(), 'AccessDenied', [wrong.secretAccessKey, wrong.accessKeyId, fixture.server.secretAccessKey]);
    expect(error.message).toMatch(/check the credentials/);
    await storeFailure(store.get('any/key'), 'AccessDenied', [wrong.secretAccessKey, wrong.accessKeyId]);
    await storeFailure(store.put('any/key', Buffer.from('x')), 'AccessDenied', [wrong.secretAccessKey, wrong.accessKeyId]);
    expect(Date.now() - started).toBeLessThan(2000);

    const wrongSecret = open({ credentials: { accessKeyId: fixture.server.accessKeyId, secretAccessKey: 'another-wrong-secret' } });
    await storeFailure(wrongSecret.list({ prefix: '' }), 'AccessDenied', ['another-wrong-secret', fixture.server.secretAccessKey]);
  });

  it('reports Unavailable within a bounded time when nothing listens', async () => {
    const port = await freePort();
    const store = open({ endpoint: `http://127.0.0.1:${port}`, maxAttempts: 2, requestTimeoutMs: 1000 });
    const started = Date.now();
    const error = await storeFailure(store.head('some/key'), 'Unavailable', [fixture.server.secretAccessKey, fixture.server.accessKeyId]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).toMatch(/ECONNREFUSED/);
    expect(error.message).toMatch(/reachable/);
  });

  it('reports NoSuchBucket for a bucket that does not exist', async () => {
    const store = open({ bucket: `${fixture.bucket}-missing` });
    const checked = await storeFailure(store.checkBucket(), 'NoSuchBucket', [fixture.server.secretAccessKey]);
    expect(checked.message).toContain(`s3://${fixture.bucket}-missing`);
    await storeFailure(store.list({ prefix: '' }), 'NoSuchBucket', [fixture.server.secretAccessKey]);
    await storeFailure(store.put('k', Buffer.from('x')), 'NoSuchBucket', [fixture.server.secretAccessKey]);
  });

  it('leaves no object when a multipart upload fails to complete, and abort cleans up its parts', async () => {
    const store = open();
    const upload = await store.createMultipartUpload('fail/object.bin');
    await upload.uploadPart(1, Buffer.alloc(1024, 1));
    await upload.uploadPart(2, Buffer.alloc(MIN_PART_SIZE, 2));
    await storeFailure(upload.complete(), 'InvalidArgument', [fixture.server.secretAccessKey]);
    await upload.abort();
    await upload.abort();
    await storeFailure(store.head('fail/object.bin'), 'NotFound', []);
    const raw = s3Client(fixture.server);
    try {
      const pending = await raw.send(new ListMultipartUploadsCommand({ Bucket: fixture.bucket, Prefix: 'fail/' }));
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
    const error = await storeFailure(store.put('stream/object.bin', Readable.from(broken())), 'Internal', []);
    expect(error.message).toMatch(/source stream failed/);
    await storeFailure(store.head('stream/object.bin'), 'NotFound', []);
    const raw = s3Client(fixture.server);
    try {
      const pending = await raw.send(new ListMultipartUploadsCommand({ Bucket: fixture.bucket, Prefix: 'stream/' }));
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
    await storeFailure(store.copy('big/missing.bin', 'big/never.bin'), 'NotFound', []);
  });
});
