import { getMaxListeners } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStore } from '../objectstore/memory';
import type { ListOptions, ListPage } from '../objectstore/store';
import { blockId, type BlockRef } from './block';
import { PeerClient, PeerError } from './peer-client';
import type { LoadResult } from './protocol';
import { NoPeers, Ring, type PeerPicker } from './ring';
import { DEFAULT_LOAD_ATTEMPTS, warmPrefix, type LoadBlock, type WarmupOptions, type WarmupProgress } from './warmup';

const BLOCK = 100;
const ENDPOINT = 'http://s3.test:9000';

/** A MemoryStore that counts list calls and can hide the ETag of some keys, as a store without ETags would. */
class CountingStore extends MemoryStore {
  listCalls = 0;
  readonly withoutEtag = new Set<string>();

  override async list(options: ListOptions, signal?: AbortSignal): Promise<ListPage> {
    this.listCalls++;
    const page = await super.list(options, signal);
    return { ...page, objects: page.objects.map((o) => (this.withoutEtag.has(o.key) ? { ...o, etag: '' } : o)) };
  }
}

const ring = new Ring([
  { url: 'http://cache-a:8080', weight: 1 },
  { url: 'http://cache-b:8080', weight: 1 },
  { url: 'http://cache-c:8080', weight: 2 },
]);

interface LoadCall {
  owner: string;
  ref: BlockRef;
}

/** A load function that records each call and answers `answer(call)` (origin by default). */
function recordingLoad(answer: (call: LoadCall, attempt: number) => Promise<LoadResult> | LoadResult = () => ({ servedFrom: 'origin', bytes: 0 })) {
  const calls: LoadCall[] = [];
  const attempts = new Map<string, number>();
  const load: LoadBlock = async (owner, ref) => {
    const call = { owner, ref };
    calls.push(call);
    const id = blockId(ref);
    const attempt = (attempts.get(id) ?? 0) + 1;
    attempts.set(id, attempt);
    return answer(call, attempt);
  };
  return { calls, load };
}

async function storeWith(objects: Record<string, number>): Promise<CountingStore> {
  const store = new CountingStore('bucket');
  for (const [key, size] of Object.entries(objects)) await store.put(key, Buffer.alloc(size, key.length));
  return store;
}

function options(store: MemoryStore, load: LoadBlock, extra: Partial<WarmupOptions> = {}): WarmupOptions {
  return { store, prefix: 'model/', endpoint: ENDPOINT, bucket: 'bucket', blockSize: BLOCK, picker: () => ring, load, retryDelayMs: 1, ...extra };
}

const flushEvents = async (turns = 10) => {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('warmPrefix', () => {
  it('loads every block of every object exactly once into the owner the ring names', async () => {
    const store = await storeWith({
      'model/': 0,
      'model/config.json': 30,
      'model/weights/': 0,
      'model/weights/shard-1': 250,
      'model/weights/shard-2': 200,
      'model/empty': 0,
      'other/outside': 150,
    });
    const { calls, load } = recordingLoad();
    const summary = await warmPrefix(options(store, load));

    const expected: Array<[string, number]> = [['model/config.json', 0], ['model/weights/shard-1', 0], ['model/weights/shard-1', 1], ['model/weights/shard-1', 2], ['model/weights/shard-2', 0], ['model/weights/shard-2', 1]];
    expect(calls.map((c) => [c.ref.key, c.ref.index]).sort()).toEqual(expected.sort());
    for (const { owner, ref } of calls) {
      const head = await store.head(ref.key);
      expect(ref).toEqual({ endpoint: ENDPOINT, bucket: 'bucket', key: ref.key, etag: head.etag, objectSize: head.size, index: ref.index, blockSize: BLOCK });
      expect(owner).toBe(ring.pickPeer(blockId(ref)));
    }
    expect(new Set(calls.map((c) => c.owner)).size).toBeGreaterThan(1);
    expect(summary).toMatchObject({
      objectsListed: 3,
      objectsSkipped: 0,
      objectsDone: 3,
      listingComplete: true,
      bytesListed: 480,
      bytesDone: 480,
      bytesFailed: 0,
      bytesFrom: { origin: 480, ram: 0, disk: 0 },
      blocksListed: 6,
      blocksDone: 6,
      failedBlocks: 0,
      etaMs: 0,
      failures: [],
    });
  });

  it('skips objects without an ETag and counts them', async () => {
    const store = await storeWith({ 'model/a': 120, 'model/b': 50 });
    store.withoutEtag.add('model/a');
    const { calls, load } = recordingLoad();
    const summary = await warmPrefix(options(store, load));
    expect(calls.map((c) => c.ref.key)).toEqual(['model/b']);
    expect(summary).toMatchObject({ objectsListed: 1, objectsSkipped: 1, objectsDone: 1, bytesDone: 50 });
  });

  it('lists every page, loading while it lists and holding no more than two pages', async () => {
    const keys: Record<string, number> = {};
    for (let i = 0; i < 13; i++) keys[`model/file-${String(i).padStart(2, '0')}`] = 10 + i;
    const store = await storeWith(keys);
    let release: () => void = () => undefined;
    const firstLoadWaits = new Promise<void>((resolve) => (release = resolve));
    const { calls, load } = recordingLoad(async (_call) => {
      if (calls.length === 1) await firstLoadWaits;
      return { servedFrom: 'origin', bytes: 0 };
    });
    const warming = warmPrefix(options(store, load, { listPageSize: 2, concurrency: 1 }));

    await flushEvents();
    expect(calls).toHaveLength(1);
    expect(store.listCalls).toBe(2); // the first page, and the next one asked for ahead
    release();
    const summary = await warming;
    expect(store.listCalls).toBe(7);
    expect(calls.map((c) => c.ref.key)).toEqual(Object.keys(keys));
    expect(summary).toMatchObject({ objectsListed: 13, objectsDone: 13, blocksDone: 13 });
  });

  it('retries a failed load, asking the ring again, and counts the block once', async () => {
    const store = await storeWith({ 'model/a': 100, 'model/b': 100 });
    const later = new Ring([{ url: 'http://cache-z:8080', weight: 1 }]);
    let current: PeerPicker = ring;
    const { calls, load } = recordingLoad((call, attempt) => {
      if (call.ref.key === 'model/a' && attempt < 3) {
        current = later;
        throw new PeerError('Unavailable', 'connection reset');
      }
      return { servedFrom: 'origin', bytes: 100 };
    });
    const summary = await warmPrefix(options(store, load, { picker: () => current, concurrency: 1 }));
    const tries = calls.filter((c) => c.ref.key === 'model/a');
    expect(tries).toHaveLength(3);
    expect(tries[0]?.owner).toBe(ring.pickPeer(blockId(tries[0]!.ref)));
    expect(tries[1]?.owner).toBe('http://cache-z:8080');
    expect(summary).toMatchObject({ blocksDone: 2, failedBlocks: 0, bytesDone: 200, failures: [] });
  });

  it('counts and reports a block that keeps failing, and still loads the others', async () => {
    const store = await storeWith({ 'model/a': 250, 'model/b': 100 });
    const { calls, load } = recordingLoad((call) => {
      if (call.ref.key === 'model/a' && call.ref.index === 1) throw new PeerError('Unavailable', 'cache server answered 503', 503);
      return { servedFrom: 'origin', bytes: 100 };
    });
    const summary = await warmPrefix(options(store, load));
    expect(calls.filter((c) => c.ref.key === 'model/a' && c.ref.index === 1)).toHaveLength(3);
    expect(calls.filter((c) => !(c.ref.key === 'model/a' && c.ref.index === 1)).map((c) => `${c.ref.key}#${c.ref.index}`).sort()).toEqual(['model/a#0', 'model/a#2', 'model/b#0']);
    expect(summary).toMatchObject({ blocksDone: 3, failedBlocks: 1, bytesDone: 250, bytesFailed: 100, objectsDone: 2, etaMs: 0 });
    expect(summary.failures).toEqual([{ key: 'model/a', index: 1, owner: expect.stringMatching(/^http:\/\/cache-/), message: 'cache server answered 503' }]);
  });

  it('tries a load again only when the owner was not reached or not ready, never after an answer such as 502', async () => {
    const store = await storeWith({ 'model/a': 100, 'model/b': 100, 'model/c': 100, 'model/d': 100, 'model/e': 100 });
    const failures: Record<string, PeerError> = {
      'model/a': new PeerError('Unavailable', 'filling the block from the object store failed', 502),
      'model/b': new PeerError('ObjectChanged', 'the object changed', 412),
      'model/c': new PeerError('Unavailable', 'the cache server is starting', 503),
      'model/d': new PeerError('TimedOut', 'no answer within 120000 ms'),
      'model/e': new PeerError('Unavailable', 'connect ECONNREFUSED'),
    };
    const { calls, load } = recordingLoad((call) => {
      throw failures[call.ref.key] ?? new Error('unexpected block');
    });
    const summary = await warmPrefix(options(store, load, { concurrency: 1 }));
    const tries = (key: string) => calls.filter((c) => c.ref.key === key).length;
    expect(Object.keys(failures).map((key) => [key, tries(key)])).toEqual([['model/a', 1], ['model/b', 1], ['model/c', 3], ['model/d', 3], ['model/e', 3]]);
    expect(summary).toMatchObject({ failedBlocks: 5, blocksDone: 0 });
  });

  it('counts blocks already in RAM or on disk apart from those fetched from the origin', async () => {
    const store = await storeWith({ 'model/hot': 200, 'model/warm': 150, 'model/cold': 40 });
    const servedFrom: Record<string, LoadResult['servedFrom']> = { 'model/hot': 'ram', 'model/warm': 'disk', 'model/cold': 'origin' };
    const { load } = recordingLoad((call) => ({ servedFrom: servedFrom[call.ref.key] ?? 'origin', bytes: 0 }));
    const summary = await warmPrefix(options(store, load));
    expect(summary.bytesFrom).toEqual({ ram: 200, disk: 150, origin: 40 });
    expect(summary.bytesDone).toBe(390);
  });

  it('stops when the signal aborts, starting no load after it', async () => {
    const keys: Record<string, number> = {};
    for (let i = 0; i < 50; i++) keys[`model/f${i}`] = 100;
    const store = await storeWith(keys);
    const controller = new AbortController();
    const signals: AbortSignal[] = [];
    let afterAbort = 0;
    const load: LoadBlock = async (_owner, _ref, signal) => {
      if (controller.signal.aborted) afterAbort++;
      signals.push(signal);
      if (signals.length === 1) return { servedFrom: 'origin', bytes: 100 };
      if (signals.length === 4) controller.abort(new Error('operator pressed Ctrl-C'));
      // The others hang until aborted, as loads from a stuck server would.
      if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve));
      throw new Error('aborted');
    };
    await expect(warmPrefix(options(store, load, { concurrency: 3, signal: controller.signal }))).rejects.toThrow('operator pressed Ctrl-C');
    expect(signals.length).toBe(4);
    expect(afterAbort).toBe(0);
    expect(signals.every((s) => s.aborted)).toBe(true);
  });

  it('lets every load in flight listen to its signal without a listener-leak warning', async () => {
    const keys: Record<string, number> = {};
    for (let i = 0; i < 40; i++) keys[`model/f${i}`] = 100;
    const store = await storeWith(keys);
    const limits = new Set<number>();
    const load: LoadBlock = async (_owner, _ref, signal) => {
      limits.add(getMaxListeners(signal)); // an HTTP client adds one 'abort' listener per request
      return { servedFrom: 'origin', bytes: 100 };
    };
    await warmPrefix(options(store, load, { concurrency: 32, signal: new AbortController().signal }));
    expect(Math.min(...limits)).toBeGreaterThanOrEqual(32 + 1);
  });

  it('fails fast, naming the flags to check, when the ring has no cache server', async () => {
    const store = await storeWith({ 'model/a': 100 });
    const { calls, load } = recordingLoad();
    await expect(warmPrefix(options(store, load, { picker: () => NoPeers }))).rejects.toThrow('no cache server is ready: check --cache-peers / the cache pods');
    expect(calls).toHaveLength(0);
  });

  it('fails when the listing fails', async () => {
    const store = await storeWith({ 'model/a': 100 });
    store.failNext('list', 'AccessDenied');
    const { load } = recordingLoad();
    await expect(warmPrefix(options(store, load))).rejects.toMatchObject({ code: 'AccessDenied' });
  });

  it('reports progress while warming and at the end, with rate and ETA from its clock', async () => {
    const store = await storeWith({ 'model/a': 300, 'model/b': 100 });
    let clock = 1_000;
    const reports: WarmupProgress[] = [];
    let reported: () => void = () => undefined;
    const { load } = recordingLoad(async (call) => {
      if (call.ref.key === 'model/b') {
        await new Promise<void>((resolve) => (reported = resolve)); // the next periodic report
      }
      clock += 500;
      return { servedFrom: 'origin', bytes: 100 };
    });
    const onProgress = (progress: WarmupProgress) => {
      reports.push(progress);
      reported();
    };
    const summary = await warmPrefix(options(store, load, { now: () => clock, onProgress, progressIntervalMs: 1, concurrency: 1 }));

    // While model/b loads: 300 bytes in 1.5 s, 100 bytes left.
    const during = reports.find((p) => p.bytesDone === 300);
    expect(during).toMatchObject({ listingComplete: true, objectsDone: 1, elapsedMs: 1_500, bytesPerSecond: 200, etaMs: 500 });
    expect(reports.at(-1)).toMatchObject({ bytesDone: 400, objectsDone: 2, elapsedMs: 2_000, etaMs: 0 });
    expect(summary).toMatchObject({ bytesDone: 400, elapsedMs: 2_000, bytesPerSecond: 200 });
  });

  it('gives no ETA while the listing goes on', async () => {
    const keys: Record<string, number> = {};
    for (let i = 0; i < 5; i++) keys[`model/f${i}`] = 100;
    const store = await storeWith(keys);
    let reported: (progress: WarmupProgress) => void = () => undefined;
    const firstReport = new Promise<WarmupProgress>((resolve) => (reported = resolve));
    const { load } = recordingLoad(async () => {
      await firstReport;
      return { servedFrom: 'origin', bytes: 100 };
    });
    const summary = await warmPrefix(options(store, load, { onProgress: (p) => reported(p), progressIntervalMs: 1, listPageSize: 2, concurrency: 1 }));
    expect(await firstReport).toMatchObject({ listingComplete: false, objectsListed: 4, bytesListed: 400, bytesDone: 0 });
    expect((await firstReport).etaMs).toBeUndefined();
    expect(summary.objectsDone).toBe(5);
  });
});

describe('warmPrefix through a real PeerClient', () => {
  const client = new PeerClient({ token: 'token-0123456789abcdef' });
  afterAll(() => client.close());

  /** A cache server on 127.0.0.1:0 that answers every load with `status`, counting them. */
  async function answering(status: number): Promise<{ url: string; loads: () => number; close: () => Promise<void> }> {
    let loads = 0;
    const server = http.createServer((_request, response) => {
      loads++;
      const text = JSON.stringify({ error: { code: 'X', message: `answered ${status}` } });
      response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      response.end(text);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      loads: () => loads,
      close: () => new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    };
  }

  it('sends one load to an owner that answers 502 (its fill had the store\'s retries), three to one that answers 503 or refuses', async () => {
    const store = await storeWith({ 'model/a': 100 });
    const warm = (url: string, load: LoadBlock = (owner, ref, signal) => client.load(owner, ref, signal)) =>
      warmPrefix(options(store, load, { picker: () => new Ring([{ url, weight: 1 }]) }));
    for (const [status, loads] of [[502, 1], [503, DEFAULT_LOAD_ATTEMPTS]] as const) {
      const owner = await answering(status);
      try {
        expect(await warm(owner.url)).toMatchObject({ failedBlocks: 1, failures: [{ message: expect.stringContaining(`answered ${status}`) }] });
        expect({ status, loads: owner.loads() }).toEqual({ status, loads });
      } finally {
        await owner.close();
      }
    }
    const gone = await answering(200);
    await gone.close();
    let refused = 0;
    const summary = await warm(gone.url, (owner, ref, signal) => {
      refused++;
      return client.load(owner, ref, signal);
    });
    expect(summary).toMatchObject({ failedBlocks: 1, failures: [{ message: expect.stringMatching(/ECONNREFUSED/) }] });
    expect(refused).toBe(DEFAULT_LOAD_ATTEMPTS);
  });
});
