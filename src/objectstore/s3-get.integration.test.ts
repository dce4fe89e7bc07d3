import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { createBucket, freePort, startS3Server } from '../../e2e/support/s3-server';
import { selfSignedCertificate } from '../../e2e/support/self-signed';
import { storeFailure, testStores } from '../../e2e/support/test-stores';
import { S3Store } from './s3';

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Keys whose encoding differs between naive and S3 URI escaping. */
const ODD_KEYS = ['odd/with space.txt', 'odd/ünïcödé/日本.bin', 'odd/a+b=c&d.txt', 'odd/100%.txt', "odd/(paren)!*'~.txt", 'odd/semi;colon,comma@at$dollar', 'odd/q?hash#.txt', 'odd/double//slash'];

describe('the lean GET against the real S3-compatible server, beside the SDK GET', () => {
  const fixture = testStores('leanget');
  const open = fixture.open;

  it('reads odd keys exactly as the SDK does', async () => {
    const lean = open();
    const sdk = open({ fastGet: false });
    for (const [i, key] of ODD_KEYS.entries()) {
      const data = Buffer.from(`content of ${key} #${i}`);
      const put = await sdk.put(key, data);
      const fast = await lean.get(key);
      expect({ size: fast.size, etag: fast.etag, range: fast.range }).toEqual({ size: data.length, etag: put.etag, range: { start: 0, end: data.length } });
      expect((await readAll(fast.body)).equals(data)).toBe(true);
      const slow = await sdk.get(key, { range: { start: 2, end: 6 } });
      const fastRange = await lean.get(key, { range: { start: 2, end: 6 }, ifMatch: put.etag });
      expect({ size: fastRange.size, etag: fastRange.etag, range: fastRange.range }).toEqual({ size: slow.size, etag: slow.etag, range: slow.range });
      expect((await readAll(fastRange.body)).equals(await readAll(slow.body))).toBe(true);
    }
  });

  it('reads ranges at the end of an object, refuses one past it, and an empty object', async () => {
    const store = open();
    const data = Buffer.alloc(65536, 9);
    await store.put('end/data.bin', data);
    const last = await store.get('end/data.bin', { range: { start: 65535, end: 65536 } });
    expect(last).toMatchObject({ size: 65536, range: { start: 65535, end: 65536 } });
    expect((await readAll(last.body)).length).toBe(1);
    const over = await store.get('end/data.bin', { range: { start: 65000, end: 1 << 20 } });
    expect(over.range).toEqual({ start: 65000, end: 65536 });
    expect((await readAll(over.body)).length).toBe(536);
    await storeFailure(store.get('end/data.bin', { range: { start: 65536, end: 65537 } }), 'InvalidArgument');
    await store.put('end/empty', Buffer.alloc(0));
    const empty = await store.get('end/empty');
    expect(empty).toMatchObject({ size: 0, range: { start: 0, end: 0 } });
    expect((await readAll(empty.body)).length).toBe(0);
  });

  it('reads a range straight into a buffer (getInto), odd keys included, with the errors get() gives', async () => {
    const store = open();
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    for (const key of ['into/plain.bin', ODD_KEYS[1] as string, ODD_KEYS[2] as string]) {
      const put = await store.put(key, data);
      const into = Buffer.alloc(100_000);
      const result = await store.getInto(key, into, { range: { start: 150_000, end: 250_000 }, ifMatch: put.etag });
      expect(result).toEqual({ size: data.length, etag: put.etag, range: { start: 150_000, end: 250_000 }, attempts: 1 });
      expect(into.equals(data.subarray(150_000, 250_000))).toBe(true);
    }
    await storeFailure(store.getInto('into/plain.bin', Buffer.alloc(10), { range: { start: 0, end: 10 }, ifMatch: 'nope' }), 'PreconditionFailed');
    await storeFailure(store.getInto('into/none', Buffer.alloc(10), { range: { start: 0, end: 10 } }), 'NotFound');
    // The SDK-only store reads through the SDK, the body inside its retried attempt, with the same answers.
    const sdk = open({ fastGet: false });
    const viaSdk = Buffer.alloc(10);
    expect(await sdk.getInto('into/plain.bin', viaSdk, { range: { start: 0, end: 10 } })).toMatchObject({ size: data.length, range: { start: 0, end: 10 }, attempts: 1 });
    expect(viaSdk.equals(data.subarray(0, 10))).toBe(true);
    await storeFailure(sdk.getInto('into/plain.bin', Buffer.alloc(10), { range: { start: 0, end: 10 }, ifMatch: 'nope' }), 'PreconditionFailed');
    // Through node:http (raw reads off), with the same answers.
    const streamed = Buffer.alloc(100_000);
    expect(await open({ rawReads: false }).getInto('into/plain.bin', streamed, { range: { start: 150_000, end: 250_000 } })).toMatchObject({ size: data.length, attempts: 1 });
    expect(streamed.equals(data.subarray(150_000, 250_000))).toBe(true);
  });

  it('fails with PreconditionFailed on an ETag mismatch, NotFound on a missing key, NoSuchBucket on a missing bucket', async () => {
    const store = open();
    await store.put('pc/file', Buffer.from('v1'));
    await storeFailure(store.get('pc/file', { ifMatch: '0123456789abcdef0123456789abcdef' }), 'PreconditionFailed');
    await storeFailure(store.get('pc/file', { ifMatch: 'nope', range: { start: 0, end: 1 } }), 'PreconditionFailed');
    const missing = await storeFailure(store.get('pc/none'), 'NotFound');
    expect(missing.message).toMatch(/^get of "pc\/none" in s3:\/\/leanget-.* failed \(NoSuchKey HTTP 404/);
    await storeFailure(open({ bucket: `${fixture.bucket}-missing` }).get('k'), 'NoSuchBucket');
  });

  it('fails fast with AccessDenied on a wrong access key or secret, without leaking either', async () => {
    const started = Date.now();
    const wrongKey = { accessKeyId: 'AKIAWRONGWRONG', secretAccessKey: 'wrong-secret-do-not-print' };
    await storeFailure(open({ credentials: wrongKey }).get('pc/file'), 'AccessDenied', [wrongKey.accessKeyId, wrongKey.secretAccessKey]);
    const wrongSecret = { accessKeyId: fixture.server.accessKeyId, secretAccessKey: 'another-wrong-secret' };
    await storeFailure(open({ credentials: wrongSecret }).get('pc/file'), 'AccessDenied', [wrongSecret.secretAccessKey, fixture.server.secretAccessKey]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('reports Unavailable within a bounded time when nothing listens', async () => {
    const port = await freePort();
    const store = open({ endpoint: `http://127.0.0.1:${port}`, maxAttempts: 3, requestTimeoutMs: 1000 });
    const started = Date.now();
    const error = await storeFailure(store.get('some/key'), 'Unavailable', [fixture.server.secretAccessKey]);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error.message).toMatch(new RegExp(`^get of "some/key" in s3://.* at 127\\.0\\.0\\.1:${port} failed after 3 attempts \\(ECONNREFUSED`));
    expect(error.message).toMatch(/reachable/);
  });

  it('aborts a get through its signal, and a body stream once reading started', async () => {
    const store = open();
    await store.put('ab/big.bin', Buffer.alloc(8 << 20, 1));
    await expect(store.get('ab/big.bin', { signal: AbortSignal.abort(new Error('not wanted')) })).rejects.toThrow('not wanted');
    const controller = new AbortController();
    const result = await store.get('ab/big.bin', { signal: controller.signal });
    controller.abort(new Error('reader went away'));
    await expect(readAll(result.body)).rejects.toThrow();
    // The store still works afterwards (the broken connection left the pool).
    expect((await readAll((await store.get('ab/big.bin', { range: { start: 0, end: 10 } })).body)).length).toBe(10);
  });
});

describe('the lean GET of an https endpoint (versitygw serving TLS)', () => {
  it('reads ranges over raw TLS connections as over node:https, and refuses a server whose certificate it does not trust', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-s3-tls-'));
    const certificate = selfSignedCertificate(dir);
    const server = await startS3Server({ tls: certificate });
    const stores: S3Store[] = [];
    let bucket = '';
    const open = (options: { ca?: string; rawReads?: boolean }) => {
      stores.push(new S3Store({ bucket, endpoint: server.endpoint, region: server.region, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey }, ...options }, {}));
      return stores[stores.length - 1] as S3Store;
    };
    try {
      bucket = await createBucket(server, 'tls');
      const data = Buffer.from(Array.from({ length: 3 << 20 }, (_, i) => (i * 13) % 251));
      const put = await open({ ca: certificate.cert }).put('tls/data.bin', data);
      for (const rawReads of [true, false]) {
        const store = open({ ca: certificate.cert, rawReads });
        for (const range of [{ start: 0, end: 1 << 20 }, { start: 1_500_000, end: 3 << 20 }]) {
          const into = Buffer.alloc(range.end - range.start);
          expect(await store.getInto('tls/data.bin', into, { range, ifMatch: put.etag })).toEqual({ size: data.length, etag: put.etag, range, attempts: 1 });
          expect(into.equals(data.subarray(range.start, range.end))).toBe(true);
        }
        // The lean listing goes over the same trusted https agent; the upload above went as UNSIGNED-PAYLOAD (TLS).
        expect((await store.list({ prefix: 'tls/' })).objects.map((object) => [object.key, object.size, object.etag])).toEqual([['tls/data.bin', data.length, put.etag]]);
      }
      const error = await storeFailure(open({}).getInto('tls/data.bin', Buffer.alloc(10), { range: { start: 0, end: 10 } }), 'Internal');
      expect(error).toMatchObject({ attempts: 1, message: expect.stringMatching(/TlsRefused .*TLS certificate was refused: self-signed certificate/) });
    } finally {
      for (const store of stores) store.close();
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
