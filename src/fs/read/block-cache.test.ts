import { silentLogger } from '../../log/logger';
import { BlockCache } from './block-cache';
import { FakeBlockFetcher } from './fake-block-fetcher';

const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

function setup(options: { capacityBytes?: number; maxConcurrentFetches?: number; latencyMs?: number } = {}) {
  const fetcher = new FakeBlockFetcher(new Map([['obj', data]]));
  fetcher.latencyMs = options.latencyMs ?? 5;
  const cache = new BlockCache({ fetcher, capacityBytes: options.capacityBytes ?? 10_000, maxConcurrentFetches: options.maxConcurrentFetches ?? 4, readaheadBudgetBytes: options.capacityBytes ?? 10_000, logger: silentLogger() });
  return { fetcher, cache };
}

const range = (start: number, end: number) => ({ key: 'obj', etag: 'e1', start, end });

describe('BlockCache', () => {
  it('fetches a range once for N concurrent readers (single-flight), then serves it from memory', async () => {
    const { fetcher, cache } = setup();
    const reads = await Promise.all(Array.from({ length: 16 }, () => cache.read(range(0, 100))));
    expect(fetcher.calls).toHaveLength(1);
    for (const read of reads) expect(read.equals(data.subarray(0, 100))).toBe(true);
    await cache.read(range(0, 100));
    expect(fetcher.calls).toHaveLength(1);
    expect(cache.stats).toMatchObject({ joins: 15, hits: 1, demandFetches: 1 });
  });

  it('joins a prefetch in flight instead of fetching again', async () => {
    const { fetcher, cache } = setup();
    cache.prefetch(range(100, 200));
    cache.prefetch(range(100, 200));
    const read = await cache.read(range(100, 200));
    expect(read.equals(data.subarray(100, 200))).toBe(true);
    expect(fetcher.calls).toHaveLength(1);
  });

  it('keys ranges by object version: a new ETag is a new fetch', async () => {
    const { fetcher, cache } = setup();
    await cache.read(range(0, 100));
    await cache.read({ ...range(0, 100), etag: 'e2' });
    expect(fetcher.calls).toHaveLength(2);
  });

  it('does not cache a failure: the next reader fetches again', async () => {
    const { fetcher, cache } = setup();
    fetcher.failWith = () => new Error('down');
    await expect(Promise.all([cache.read(range(0, 10)), cache.read(range(0, 10))])).rejects.toThrow('down');
    expect(fetcher.calls).toHaveLength(1);
    fetcher.failWith = undefined;
    await expect(cache.read(range(0, 10))).resolves.toHaveLength(10);
    expect(fetcher.calls).toHaveLength(2);
  });

  it('never holds more than its capacity, and never runs more fetches than its limit', async () => {
    const { fetcher, cache } = setup({ capacityBytes: 250, maxConcurrentFetches: 3 });
    const reads = [];
    for (let start = 0; start < 1000; start += 100) {
      reads.push(cache.read(range(start, start + 100)));
      cache.prefetch(range(start + 50, start + 100));
    }
    await Promise.all(reads);
    await cache.idle();
    expect(fetcher.maxRunning).toBeLessThanOrEqual(3);
    expect(cache.cachedBytes).toBeLessThanOrEqual(250);
    expect(cache.evictions).toBeGreaterThan(0);
  });

  it('counts a failed prefetch without an unhandled rejection', async () => {
    const { fetcher, cache } = setup();
    fetcher.failWith = () => new Error('down');
    cache.prefetch(range(0, 10));
    await cache.idle();
    expect(cache.stats.readaheadFailures).toBe(1);
  });
});

describe('BlockCache readahead budget', () => {
  it('stops prefetching while unread prefetched bytes would exceed the budget, and resumes once they are read', async () => {
    const fetcher = new FakeBlockFetcher(new Map([['obj', data]]));
    const cache = new BlockCache({ fetcher, capacityBytes: 1000, maxConcurrentFetches: 8, readaheadBudgetBytes: 300, logger: silentLogger() });
    for (let start = 0; start < 1000; start += 100) cache.prefetch(range(start, start + 100));
    expect(fetcher.calls).toHaveLength(3);
    expect(cache.stats.readaheadSkipped).toBe(7);
    await cache.read(range(0, 100));
    cache.prefetch(range(300, 400));
    expect(fetcher.calls).toHaveLength(4);
  });

  it('counts prefetched ranges evicted before anyone read them', async () => {
    const fetcher = new FakeBlockFetcher(new Map([['obj', data]]));
    const cache = new BlockCache({ fetcher, capacityBytes: 200, maxConcurrentFetches: 8, readaheadBudgetBytes: 200, logger: silentLogger() });
    cache.prefetch(range(0, 100));
    await cache.idle();
    await cache.read(range(500, 600));
    await cache.read(range(600, 700));
    expect(cache.stats.readaheadWasted).toBe(1);
  });

  describe('with recycled block buffers', () => {
    const BLOCK = 100;
    const big = Buffer.from(Array.from({ length: 40 * BLOCK }, (_, i) => (i * 7 + (i >> 5)) % 253));
    const pooled = (capacityBlocks: number, maxConcurrentFetches: number) => {
      const fetcher = new FakeBlockFetcher(new Map([['obj', big]]));
      fetcher.latencyMs = 1;
      const cache = new BlockCache({ fetcher, capacityBytes: capacityBlocks * BLOCK, maxConcurrentFetches, readaheadBudgetBytes: capacityBlocks * BLOCK, blockSizeBytes: BLOCK, logger: silentLogger() });
      return { fetcher, cache };
    };
    const block = (index: number) => range(index * BLOCK, (index + 1) * BLOCK);

    it('reuses the buffers of evicted blocks, and never lends a fetch the buffer of a block still cached', async () => {
      const { fetcher, cache } = pooled(4, 2);
      const held = new Map<number, Buffer>();
      for (let round = 0; round < 3; round++) {
        for (let index = 0; index < 12; index++) {
          const bytes = await cache.read(block(index));
          // Checked in the read's own continuation, the only place a reader may look at the buffer.
          expect(bytes.equals(big.subarray(index * BLOCK, (index + 1) * BLOCK))).toBe(true);
          held.set(index, bytes);
          // Let quarantined buffers reach the free list, as the event loop would between requests.
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      expect(cache.bufferStats.reused).toBeGreaterThan(0);
      // Every fetch got a buffer that no block in the cache was using at that moment.
      const lent = fetcher.calls.map((call) => call.into).filter((into): into is Buffer => into !== undefined);
      expect(lent.length).toBe(fetcher.calls.length);
      for (const [index, call] of fetcher.calls.entries()) {
        const later = fetcher.calls.slice(index + 1, index + 4).map((next) => next.into?.buffer);
        // A capacity of 4 blocks: the three fetches after this one cannot have evicted it yet.
        expect(later).not.toContain(call.into?.buffer);
      }
    });

    it('keeps cached, in-flight and free buffers within capacity + maxConcurrentFetches blocks', async () => {
      const { cache } = pooled(5, 3);
      const bound = 5 * BLOCK + 3 * BLOCK;
      let peak = 0;
      const watch = setInterval(() => { peak = Math.max(peak, cache.heldBytes); }, 0);
      try {
        let seed = 7;
        const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 40;
        for (let round = 0; round < 30; round++) {
          await Promise.all(Array.from({ length: 6 }, () => {
            const index = next();
            return cache.read(block(index)).then((bytes) => expect(bytes.equals(big.subarray(index * BLOCK, (index + 1) * BLOCK))).toBe(true));
          }));
          // Odd-sized ranges (random reads) share the same bound.
          await cache.read(range(round * 10, round * 10 + 37));
          peak = Math.max(peak, cache.heldBytes);
        }
      } finally {
        clearInterval(watch);
      }
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThanOrEqual(bound);
      expect(cache.bufferStats.reused).toBeGreaterThan(0);
    });

    it('gives a failed fetch\'s buffer back, and caches nothing for it', async () => {
      const { fetcher, cache } = pooled(4, 2);
      fetcher.failWith = () => new Error('boom');
      await expect(cache.read(block(0))).rejects.toThrow('boom');
      await new Promise((resolve) => setImmediate(resolve));
      expect(cache.bufferStats.heldBytes).toBe(BLOCK);
      fetcher.failWith = undefined;
      const bytes = await cache.read(block(0));
      expect(bytes.equals(big.subarray(0, BLOCK))).toBe(true);
      expect(cache.bufferStats.reused).toBe(1);
    });
  });
});

