import { silentLogger } from '../log/logger';
import { ObjectStoreError } from '../objectstore/errors';
import { MemoryStore } from '../objectstore/memory';
import { DEFAULT_MAX_ATTEMPTS, S3Store } from '../objectstore/s3';
import type { ObjectStore } from '../objectstore/store';
import { scriptedServer, type Answer } from '../objectstore/testing';
import { OriginFetcher } from './origin-fetcher';
import type { OriginFetchPolicy } from './origin-fetch-policy';

const policy: OriginFetchPolicy = { fetchTimeoutMs: 200 };
const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7) % 256));

async function setup() {
  const store = new MemoryStore();
  const info = await store.put('dir/obj', data);
  return { store, etag: info.etag, source: new OriginFetcher(store, policy, silentLogger()) };
}

/** A store whose getInto() calls run `getInto` instead (the others go to a MemoryStore). */
function storeWith(getInto: ObjectStore['getInto']): ObjectStore {
  const store = new MemoryStore();
  return Object.assign(Object.create(store) as ObjectStore, { getInto });
}

/** An S3Store (default maxAttempts) on a scripted S3 answering `answers`, then 200 "hello". */
async function scriptedStore(answers: Answer[], fetchTimeoutMs = 10_000) {
  const server = await scriptedServer(answers);
  const store = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIAUNITTEST', secretAccessKey: 'unit-test-secret' } }, {});
  return { server, store, source: new OriginFetcher(store, { fetchTimeoutMs }, silentLogger()), close: async () => { store.close(); await server.close(); } };
}

const INTERNAL_ERROR = { status: 500, body: '<Error><Code>InternalError</Code><Message>try again</Message></Error>' };

describe('OriginFetcher', () => {
  it('fetches exactly the range with If-Match on the version', async () => {
    const { store, etag, source } = await setup();
    const getInto = jest.spyOn(store, 'getInto');
    const bytes = await source.fetch({ key: 'dir/obj', etag, start: 4096, end: 8192 });
    expect(bytes.equals(data.subarray(4096, 8192))).toBe(true);
    expect(getInto).toHaveBeenCalledWith('dir/obj', expect.any(Buffer), expect.objectContaining({ range: { start: 4096, end: 8192 }, ifMatch: etag }));
    expect(source.stats).toMatchObject({ requests: 1, bytes: 4096, retries: 0 });
  });

  it('reads into the buffer it is given', async () => {
    const { etag, source } = await setup();
    const into = Buffer.alloc(10_000);
    expect(await source.fetch({ key: 'dir/obj', etag, start: 0, end: 10_000, into })).toBe(into);
    expect(into.equals(data)).toBe(true);
  });

  it('leaves the retries of Unavailable to the store, and counts the requests it made', async () => {
    const { server, source, close } = await scriptedStore([INTERNAL_ERROR, INTERNAL_ERROR]);
    try {
      await expect(source.fetch({ key: 'k', etag: 'e1', start: 0, end: 5 })).resolves.toEqual(Buffer.from('hello'));
      expect(server.requests).toHaveLength(3);
      expect(source.stats).toMatchObject({ requests: 3, retries: 2, failures: 0 });
    } finally {
      await close();
    }
  });

  it('makes exactly the store\'s maxAttempts requests for a block the store keeps failing, and no more of its own', async () => {
    const { server, source, close } = await scriptedStore(Array.from({ length: 2 * DEFAULT_MAX_ATTEMPTS }, () => INTERNAL_ERROR));
    try {
      await expect(source.fetch({ key: 'k', etag: 'e1', start: 0, end: 5 })).rejects.toMatchObject({ code: 'Unavailable' });
      expect(server.requests).toHaveLength(DEFAULT_MAX_ATTEMPTS);
      expect(source.stats).toMatchObject({ requests: DEFAULT_MAX_ATTEMPTS, retries: DEFAULT_MAX_ATTEMPTS - 1, failures: 1 });
    } finally {
      await close();
    }
  });

  it('does not call the store again when it fails: one store call per fill', async () => {
    const { store, etag, source } = await setup();
    for (let i = 0; i < 5; i++) store.failNext('get', 'Unavailable');
    await expect(source.fetch({ key: 'dir/obj', etag, start: 0, end: 10 })).rejects.toMatchObject({ code: 'Unavailable' });
    expect(source.stats).toMatchObject({ requests: 1, retries: 0, failures: 1 });
  });

  it('does not retry PreconditionFailed: the object changed', async () => {
    const { store, source } = await setup();
    await store.put('dir/obj', Buffer.from('new content'));
    await expect(source.fetch({ key: 'dir/obj', etag: 'old-etag', start: 0, end: 10 })).rejects.toMatchObject({ code: 'PreconditionFailed' });
    expect(source.stats).toMatchObject({ requests: 1, retries: 0, failures: 1 });
  });

  it('bounds the whole fill, every try of the store included, by fetchTimeoutMs', async () => {
    let calls = 0;
    const store = storeWith((_key, _into, options) => {
      calls++;
      // Like a store: the call only ends when its signal aborts.
      return new Promise((_, reject) => options.signal?.addEventListener('abort', () => reject(new Error('aborted'))));
    });
    const source = new OriginFetcher(store, { fetchTimeoutMs: 50 }, silentLogger());
    const started = Date.now();
    await expect(source.fetch({ key: 'k', etag: 'e', start: 0, end: 10 })).rejects.toThrow(/took more than 50 ms/);
    expect(calls).toBe(1);
    expect(Date.now() - started).toBeLessThan(1000);

    // A real store that stops answering: its own timeout (30 s) and retries never get their turn.
    const hung = await scriptedStore(['stall-headers', 'stall-headers'], 100);
    try {
      await expect(hung.source.fetch({ key: 'k', etag: 'e1', start: 0, end: 5 })).rejects.toMatchObject({ code: 'Unavailable', message: expect.stringMatching(/took more than 100 ms/) });
      expect(hung.server.requests).toHaveLength(1);
    } finally {
      await hung.close();
    }
  });

  it('has a body that ends early tried again by the store, within its one call', async () => {
    const { server, source, close } = await scriptedStore(['cut-body']);
    try {
      await expect(source.fetch({ key: 'k', etag: 'e1', start: 0, end: 5 })).resolves.toEqual(Buffer.from('hello'));
      expect(server.requests).toHaveLength(2);
      expect(source.stats).toMatchObject({ requests: 2, retries: 1 });
    } finally {
      await close();
    }
  });

  it('stops at once when the caller aborts', async () => {
    const { store, etag, source } = await setup();
    for (let i = 0; i < 5; i++) store.failNext('get', new ObjectStoreError('Unavailable', 'down'));
    const controller = new AbortController();
    controller.abort(new Error('mount closing'));
    await expect(source.fetch({ key: 'dir/obj', etag, start: 0, end: 10, signal: controller.signal })).rejects.toThrow('mount closing');
  });
});
