import { Readable } from 'node:stream';
import { silentLogger } from '../log/logger';
import { ObjectStoreError } from '../objectstore/errors';
import { MemoryStore } from '../objectstore/memory';
import type { GetOptions, GetResult, ObjectStore } from '../objectstore/store';
import { OriginBlockSource } from './origin-block-source';
import type { OriginFetchPolicy } from './origin-fetch-policy';

const policy: OriginFetchPolicy = { fetchTimeoutMs: 200, fetchAttempts: 3, retryBaseDelayMs: 1, retryMaxDelayMs: 5 };
const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7) % 256));

async function setup() {
  const store = new MemoryStore();
  const info = await store.put('dir/obj', data);
  return { store, etag: info.etag, source: new OriginBlockSource(store, policy, silentLogger()) };
}

/** A store whose get() calls run `get` instead (the others go to a MemoryStore). */
function storeWith(get: (key: string, options: GetOptions) => Promise<GetResult>): ObjectStore {
  const store = new MemoryStore();
  return Object.assign(Object.create(store) as ObjectStore, { get });
}

describe('OriginBlockSource', () => {
  it('fetches exactly the range with If-Match on the version', async () => {
    const { store, etag, source } = await setup();
    const get = jest.spyOn(store, 'get');
    const bytes = await source.fetch({ key: 'dir/obj', etag, start: 4096, end: 8192 });
    expect(bytes.equals(data.subarray(4096, 8192))).toBe(true);
    expect(get).toHaveBeenCalledWith('dir/obj', expect.objectContaining({ range: { start: 4096, end: 8192 }, ifMatch: etag }));
    expect(source.stats).toMatchObject({ requests: 1, bytes: 4096, retries: 0 });
  });

  it('reads a body of many chunks into one buffer', async () => {
    const chunks = Array.from({ length: 100 }, (_, i) => data.subarray(i * 100, (i + 1) * 100));
    const store = storeWith(async () => ({ body: Readable.from(chunks), size: data.length, etag: 'e', range: { start: 0, end: 10_000 } }));
    const bytes = await new OriginBlockSource(store, policy, silentLogger()).fetch({ key: 'k', etag: 'e', start: 0, end: 10_000 });
    expect(bytes.equals(data)).toBe(true);
  });

  it('retries Unavailable with backoff, then succeeds', async () => {
    const { store, etag, source } = await setup();
    store.failNext('get', 'Unavailable');
    store.failNext('get', 'Unavailable');
    await expect(source.fetch({ key: 'dir/obj', etag, start: 0, end: 10 })).resolves.toHaveLength(10);
    expect(source.stats).toMatchObject({ requests: 3, retries: 2, failures: 0 });
  });

  it('gives up after fetchAttempts on a dead store', async () => {
    const { store, etag, source } = await setup();
    for (let i = 0; i < 5; i++) store.failNext('get', 'Unavailable');
    await expect(source.fetch({ key: 'dir/obj', etag, start: 0, end: 10 })).rejects.toMatchObject({ code: 'Unavailable' });
    expect(source.stats).toMatchObject({ requests: 3, retries: 2, failures: 1 });
  });

  it('does not retry PreconditionFailed: the object changed', async () => {
    const { store, source } = await setup();
    await store.put('dir/obj', Buffer.from('new content'));
    await expect(source.fetch({ key: 'dir/obj', etag: 'old-etag', start: 0, end: 10 })).rejects.toMatchObject({ code: 'PreconditionFailed' });
    expect(source.stats).toMatchObject({ requests: 1, retries: 0, failures: 1 });
  });

  it('times out a GET that hangs, retries, and fails within attempts × timeout', async () => {
    let calls = 0;
    const store = storeWith((_key, options) => {
      calls++;
      // Like the SDK: the request only ends when its signal aborts.
      return new Promise((_, reject) => options.signal?.addEventListener('abort', () => reject(new Error('aborted'))));
    });
    const source = new OriginBlockSource(store, { ...policy, fetchTimeoutMs: 50 }, silentLogger());
    const started = Date.now();
    await expect(source.fetch({ key: 'k', etag: 'e', start: 0, end: 10 })).rejects.toThrow(/took more than 50 ms/);
    expect(calls).toBe(3);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('retries a body that ends early', async () => {
    let calls = 0;
    const store = storeWith(async () => {
      calls++;
      const body = calls === 1 ? data.subarray(0, 5) : data.subarray(0, 10);
      return { body: Readable.from([body]), size: data.length, etag: 'e', range: { start: 0, end: 10 } };
    });
    const source = new OriginBlockSource(store, policy, silentLogger());
    await expect(source.fetch({ key: 'k', etag: 'e', start: 0, end: 10 })).resolves.toHaveLength(10);
    expect(calls).toBe(2);
  });

  it('stops at once when the caller aborts', async () => {
    const { store, etag, source } = await setup();
    for (let i = 0; i < 5; i++) store.failNext('get', new ObjectStoreError('Unavailable', 'down'));
    const controller = new AbortController();
    controller.abort(new Error('mount closing'));
    await expect(source.fetch({ key: 'dir/obj', etag, start: 0, end: 10, signal: controller.signal })).rejects.toThrow('mount closing');
  });
});
