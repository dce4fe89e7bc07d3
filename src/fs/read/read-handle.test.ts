import { createHash } from 'node:crypto';
import { silentLogger } from '../../log/logger';
import { MemoryStore } from '../../objectstore/memory';
import { Errno } from '../errno';
import { FuseError } from '../fuse/operations';
import { BlockCache } from './block-cache';
import { readPathSchema, type ReadPathConfigInput } from '../../config/read-path';
import { FakeBlockFetcher } from './fake-block-fetcher';
import { createReadHandle } from './read-handle';
import { ReadPath } from './read-path';

const KiB = 1024;
const BLOCK = 64 * KiB;
const SIZE = 20 * BLOCK + 1234; // a partial last block
const data = Buffer.from(Array.from({ length: SIZE }, (_, i) => (i * 31 + (i >> 8)) % 256));
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const config = (input: ReadPathConfigInput = {}) =>
  readPathSchema.parse({
    blockSizeBytes: BLOCK,
    cacheBytes: 64 * BLOCK,
    randomReadUnitBytes: 4 * KiB,
    sequentialSlackBytes: 2 * BLOCK,
    sequentialThresholdBytes: BLOCK / 2,
    readaheadMaxBlocks: 8,
    keepBehindBytes: 0,
    ...input,
  });

function setup(input: ReadPathConfigInput = {}, latencyMs = 1) {
  const fetcher = new FakeBlockFetcher(new Map([['obj', data]]));
  fetcher.latencyMs = latencyMs;
  const parsed = config(input);
  const cache = new BlockCache({ fetcher, capacityBytes: parsed.cacheBytes, maxConcurrentFetches: parsed.maxConcurrentFetches, readaheadBudgetBytes: parsed.cacheBytes / 2, logger: silentLogger() });
  const open = (alone?: () => boolean) => createReadHandle({ key: 'obj', etag: 'e1', size: SIZE, cache, config: parsed, logger: silentLogger(), ...(alone && { alone }) });
  return { fetcher, cache, open };
}

async function readAll(handle: ReturnType<ReturnType<typeof setup>['open']>, step: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let offset = 0; ; offset += step) {
    const part = await handle.read(offset, step);
    if (part.length === 0) break;
    parts.push(Buffer.from(part));
  }
  return Buffer.concat(parts);
}

describe('ReadHandle', () => {
  it('reads a whole file sequentially with aligned block fetches, each block once, ahead of the reader', async () => {
    const { fetcher, cache, open } = setup();
    const handle = open();
    expect(sha(await readAll(handle, 16 * KiB))).toBe(sha(data));
    await cache.idle();
    const starts = fetcher.calls.map((call) => call.start);
    expect(new Set(starts).size).toBe(starts.length); // no block fetched twice
    expect(fetcher.calls).toHaveLength(21);
    for (const call of fetcher.calls) {
      expect(call.start % BLOCK).toBe(0);
      expect(call.end).toBe(Math.min(call.start + BLOCK, SIZE));
    }
    expect(fetcher.maxRunning).toBeGreaterThan(1); // the window fetched blocks in parallel
  });

  it('returns short at EOF and empty past it', async () => {
    const { open } = setup();
    const handle = open();
    const tail = await handle.read(SIZE - 100, 4096);
    expect(tail.equals(data.subarray(SIZE - 100))).toBe(true);
    expect(await handle.read(SIZE, 4096)).toHaveLength(0);
    expect(await handle.read(SIZE + 10 * BLOCK, 4096)).toHaveLength(0);
  });

  it('reads across block boundaries', async () => {
    const { open } = setup();
    const handle = open();
    const read = await handle.read(BLOCK - 100, 2 * BLOCK + 200);
    expect(read.equals(data.subarray(BLOCK - 100, 3 * BLOCK + 100))).toBe(true);
  });

  it('random reads fetch only the wanted bytes (rounded to the unit) and nothing ahead', async () => {
    const { fetcher, cache, open } = setup();
    const handle = open();
    const offsets = [13 * BLOCK + 5000, 3 * BLOCK + 100, 17 * BLOCK + 60_000, 9 * BLOCK + 7];
    for (const offset of offsets) {
      const read = await handle.read(offset, 8 * KiB);
      expect(read.equals(data.subarray(offset, offset + 8 * KiB))).toBe(true);
    }
    await cache.idle();
    const fetched = fetcher.calls.reduce((total, call) => total + call.end - call.start, 0);
    expect(fetched).toBeLessThanOrEqual(offsets.length * 16 * KiB + 4 * KiB);
    expect(fetcher.calls.every((call) => call.end - call.start < BLOCK)).toBe(true);
  });

  it('a random read of at least one unit fetches exactly its pages, one GET per block it touches', async () => {
    const { fetcher, cache, open } = setup({ randomReadUnitBytes: 16 * KiB });
    const handle = open();
    // Page-aligned like the kernel's requests: inside one block, then across a block boundary.
    // The test's threshold makes a read of 32 KiB sequential at once: 24 KiB reads stay random.
    const inside = await handle.read(7 * BLOCK + 8 * KiB, 24 * KiB);
    expect(inside.equals(data.subarray(7 * BLOCK + 8 * KiB, 7 * BLOCK + 32 * KiB))).toBe(true);
    // 20 KiB in one block (at least a unit: exact), 4 KiB in the next (less than a unit: rounded out to it).
    const across = await handle.read(11 * BLOCK - 20 * KiB, 24 * KiB);
    expect(across.equals(data.subarray(11 * BLOCK - 20 * KiB, 11 * BLOCK + 4 * KiB))).toBe(true);
    await cache.idle();
    expect(fetcher.calls.map(({ start, end }) => ({ start, end }))).toEqual([
      { start: 7 * BLOCK + 8 * KiB, end: 7 * BLOCK + 32 * KiB },
      { start: 11 * BLOCK - 20 * KiB, end: 11 * BLOCK },
      { start: 11 * BLOCK, end: 11 * BLOCK + 16 * KiB },
    ]);
  });

  it('drops a range fetched exactly for one random read once it is read, and keeps a rounded-out one', async () => {
    const { cache, open } = setup({ randomReadUnitBytes: 16 * KiB });
    // Not alone: other handles on the version do not keep a range fetched for one read.
    const handle = open(() => false);
    const exact = { key: 'obj', etag: 'e1', start: 7 * BLOCK + 8 * KiB, end: 7 * BLOCK + 32 * KiB };
    expect((await handle.read(exact.start, 24 * KiB)).equals(data.subarray(exact.start, exact.end))).toBe(true);
    expect(cache.holds(exact)).toBe(false);
    expect(cache.stats.released).toBe(1);
    // 4 KiB, less than a unit: rounded out to 16 KiB, kept for the neighbouring reads (mmap faults) that share it.
    await handle.read(3 * BLOCK, 4 * KiB);
    expect(cache.holds({ key: 'obj', etag: 'e1', start: 3 * BLOCK, end: 3 * BLOCK + 16 * KiB })).toBe(true);
    expect(cache.stats.released).toBe(1);
  });

  it('a sequential stream releases the blocks it has passed (beyond the slack), and only its own', async () => {
    const { cache, open } = setup();
    // Another reader's block before the stream's start: never released by it.
    const before = { key: 'obj', etag: 'e1', objectSize: SIZE, start: 2 * BLOCK, end: 3 * BLOCK };
    await cache.read(before);
    const handle = open(() => true);
    for (let offset = 4 * BLOCK; offset < 12 * BLOCK; offset += 16 * KiB) await handle.read(offset, 16 * KiB);
    await cache.idle();
    expect(cache.holds(before)).toBe(true);
    // The last read was at 12 blocks less 16 KiB, slack 2 blocks: blocks 4 to 8 end before that less the slack and were
    // dropped; 9 to 11 stay for the kernel's late requests.
    for (let index = 4; index <= 8; index++) expect(cache.holds({ key: 'obj', etag: 'e1', start: index * BLOCK, end: (index + 1) * BLOCK })).toBe(false);
    for (let index = 9; index <= 11; index++) expect(cache.holds({ key: 'obj', etag: 'e1', start: index * BLOCK, end: (index + 1) * BLOCK })).toBe(true);
  });

  it('keeps keepBehindBytes more of what a stream alone has read, for a reader that opens a moment later', async () => {
    const { cache, open } = setup({ keepBehindBytes: 3 * BLOCK });
    const handle = open(() => true);
    for (let offset = 0; offset < 12 * BLOCK; offset += 16 * KiB) await handle.read(offset, 16 * KiB);
    await cache.idle();
    // Last read at 12 blocks less 16 KiB: slack (2 blocks) and 3 blocks more are kept, so blocks 0 to 5 went back.
    for (let index = 0; index <= 5; index++) expect(cache.holds({ key: 'obj', etag: 'e1', start: index * BLOCK, end: (index + 1) * BLOCK })).toBe(false);
    for (let index = 6; index <= 11; index++) expect(cache.holds({ key: 'obj', etag: 'e1', start: index * BLOCK, end: (index + 1) * BLOCK })).toBe(true);
  });

  it('keeps what a stream has passed while another handle is open on the same version (it may need it next)', async () => {
    const { cache, open } = setup();
    const handle = open(() => false);
    for (let offset = 0; offset < 8 * BLOCK; offset += 16 * KiB) await handle.read(offset, 16 * KiB);
    await cache.idle();
    expect(cache.stats.released).toBe(0);
    for (let index = 0; index < 8; index++) expect(cache.holds({ key: 'obj', etag: 'e1', start: index * BLOCK, end: (index + 1) * BLOCK })).toBe(true);
  });

  it('reads right while recycled block buffers churn through a small cache (sequential and across blocks)', async () => {
    const fetcher = new FakeBlockFetcher(new Map([['obj', data]]));
    fetcher.latencyMs = 1;
    const parsed = config({ cacheBytes: 3 * BLOCK, readaheadMaxBlocks: 2 });
    // Fetch slots to spare: with every slot busy and the cache full, the memory bound leaves no room for free buffers.
    const cache = new BlockCache({ fetcher, capacityBytes: parsed.cacheBytes, maxConcurrentFetches: 6, readaheadBudgetBytes: 2 * BLOCK, blockSizeBytes: BLOCK, logger: silentLogger() });
    const open = () => createReadHandle({ key: 'obj', etag: 'e1', size: SIZE, cache, config: parsed, logger: silentLogger() });
    // 48 KiB steps cross block boundaries, so some replies are copies of two blocks arriving at different times.
    const [first, second] = await Promise.all([readAll(open(), 48 * KiB), readAll(open(), 64 * KiB)]);
    expect(sha(first as Buffer)).toBe(sha(data));
    expect(sha(second as Buffer)).toBe(sha(data));
    expect(cache.bufferStats.reused).toBeGreaterThan(0);
  });

  it('random reads fetch whole blocks when the unit is the block size', async () => {
    const { fetcher, cache, open } = setup({ randomReadUnitBytes: BLOCK });
    const handle = open();
    await handle.read(5 * BLOCK + 10, 100);
    await cache.idle();
    expect(fetcher.calls).toEqual([expect.objectContaining({ start: 5 * BLOCK, end: 6 * BLOCK })]);
  });

  it('resets readahead on a seek', async () => {
    const { fetcher, cache, open } = setup();
    const handle = open();
    for (let offset = 0; offset < 4 * BLOCK; offset += 16 * KiB) await handle.read(offset, 16 * KiB);
    await cache.idle();
    const before = fetcher.calls.length;
    await handle.read(15 * BLOCK + 3, 100);
    await cache.idle();
    const after = fetcher.calls.slice(before);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ start: 15 * BLOCK, end: 15 * BLOCK + 4 * KiB });
  });

  it('serves several concurrent sequential streams over one file, sharing the blocks', async () => {
    const { fetcher, cache, open } = setup({}, 3);
    const results = await Promise.all(Array.from({ length: 8 }, () => readAll(open(), 32 * KiB)));
    for (const result of results) expect(sha(result)).toBe(sha(data));
    await cache.idle();
    expect(fetcher.calls).toHaveLength(21);
  });

  it('serves streams that start at different offsets', async () => {
    const { open } = setup({}, 2);
    const starts = [0, 5 * BLOCK, 11 * BLOCK + 77, 19 * BLOCK];
    await Promise.all(
      starts.map(async (start) => {
        const handle = open();
        for (let offset = start; offset < SIZE; offset += 20 * KiB) {
          const read = await handle.read(offset, 20 * KiB);
          expect(read.equals(data.subarray(offset, offset + 20 * KiB))).toBe(true);
        }
      }),
    );
  });

  it('answers EBADF to writes and to reads after release; flush and fsync do nothing', async () => {
    const { open } = setup();
    const handle = open();
    await expect(handle.write()).rejects.toMatchObject({ errno: Errno.EBADF });
    await expect(handle.flush()).resolves.toBeUndefined();
    await expect(handle.fsync()).resolves.toBeUndefined();
    await handle.release();
    await expect(handle.read(0, 10)).rejects.toMatchObject({ errno: Errno.EBADF });
  });
});

describe('ReadHandle over the object store (ReadPath)', () => {
  async function storeSetup(input: ReadPathConfigInput = {}) {
    const store = new MemoryStore();
    const info = await store.put('vol/obj', data);
    const path = new ReadPath({ store, config: config({ fetchTimeoutMs: 100, ...input }), logger: silentLogger() });
    return { store, path, handle: path.open({ key: 'vol/obj', etag: info.etag, size: SIZE }) };
  }

  it('gives back what a stream has read only while it is the one handle open on its version', async () => {
    const { store, path, handle } = await storeSetup({ sequentialSlackBytes: BLOCK });
    const other = path.open({ key: 'vol/obj', etag: (await store.head('vol/obj')).etag, size: SIZE });
    for (let offset = 0; offset < 6 * BLOCK; offset += 32 * KiB) await handle.read(offset, 32 * KiB);
    await path.cache.idle();
    expect(path.cache.stats.released).toBe(0); // two handles open: the other may read these blocks next
    await other.release();
    for (let offset = 6 * BLOCK; offset < 12 * BLOCK; offset += 32 * KiB) await handle.read(offset, 32 * KiB);
    expect(path.cache.stats.released).toBeGreaterThan(0); // alone now
    path.close();
  });

  it('reads the object', async () => {
    const { handle } = await storeSetup();
    expect(sha(await readAll(handle, 100 * KiB))).toBe(sha(data));
  });

  it('answers EIO within a bounded time when the store is dead', async () => {
    const { store, path, handle } = await storeSetup();
    for (let i = 0; i < 10; i++) store.failNext('get', 'Unavailable');
    const started = Date.now();
    const failure = await handle.read(3 * BLOCK, 100).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(FuseError);
    expect(failure).toMatchObject({ errno: Errno.EIO });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(path.origin.stats).toMatchObject({ requests: 1, retries: 0 });
  });

  it('answers EIO without retrying when the object changed since open', async () => {
    const { store, path, handle } = await storeSetup();
    await store.put('vol/obj', Buffer.from('another version'));
    // A random read: one GET, no readahead, so the count shows no retry.
    await expect(handle.read(5 * BLOCK + 7, 100)).rejects.toMatchObject({ errno: Errno.EIO });
    expect(path.origin.stats).toMatchObject({ requests: 1, retries: 0, failures: 1 });
  });

  it('fails reads in flight when the mount closes', async () => {
    const { path, handle } = await storeSetup();
    path.close();
    await expect(handle.read(0, 100)).rejects.toMatchObject({ errno: Errno.EIO });
  });
});
