import type { BlockRequest, BlockSource } from '../fs/read/block-source';
import { silentLogger } from '../log/logger';
import { blockId, type BlockRef } from './block';
import { BlockStore } from './block-store';
import { RamTier } from './tiers/ram';
import type { Tier } from './tiers/tier';

const BLOCK = 64 * 1024;
const ref = (index: number): BlockRef => ({ endpoint: '', bucket: 'b', key: 'k', etag: 'e', objectSize: 3 * BLOCK + 5, index, blockSize: BLOCK });

/** An origin that counts its GETs and answers after `gate` resolves. */
function countingOrigin(gate: Promise<void> = Promise.resolve()) {
  const requests: BlockRequest[] = [];
  const source: BlockSource = {
    fetch: async (request) => {
      requests.push(request);
      await gate;
      return Buffer.alloc(request.end - request.start, request.start / BLOCK + 1);
    },
  };
  return { source, requests };
}

/** A second RamTier standing in for the disk tier (same contract), named 'disk'. */
function fakeDisk(capacity: number): Tier {
  return Object.defineProperty(new RamTier(capacity), 'name', { value: 'disk' }) as Tier;
}

describe('BlockStore', () => {
  it('fills a block once for every concurrent reader, with the exact range of the block', async () => {
    let open: () => void = () => undefined;
    const origin = countingOrigin(new Promise((resolve) => (open = resolve)));
    const store = new BlockStore({ ram: new RamTier(BLOCK * 4), origin: () => origin.source, logger: silentLogger() });
    const reads = Array.from({ length: 5 }, () => store.read(ref(3)));
    open();
    const results = await Promise.all(reads);
    expect(origin.requests).toEqual([expect.objectContaining({ key: 'k', etag: 'e', start: 3 * BLOCK, end: 3 * BLOCK + 5 })]);
    expect(results.map((result) => result.source)).toEqual(['origin', 'origin', 'origin', 'origin', 'origin']);
    expect(store.stats).toMatchObject({ originFills: 1, originBytes: 5, joins: 4 });
    expect((await store.read(ref(3))).source).toBe('ram');
  });

  it('writes fills through to disk, and promotes a disk hit to RAM', async () => {
    const origin = countingOrigin();
    const ram = new RamTier(BLOCK);
    const disk = fakeDisk(BLOCK * 4);
    const store = new BlockStore({ ram, disk, origin: () => origin.source, logger: silentLogger() });
    await store.read(ref(0));
    await store.flush();
    expect(disk.has(blockId(ref(0)))).toBe(true);
    await store.read(ref(1)); // pushes block 0 out of the one-block RAM tier
    await store.flush();
    expect(ram.has(blockId(ref(0)))).toBe(false);
    const again = await store.read(ref(0));
    expect(again.source).toBe('disk');
    expect(again.data).toEqual(Buffer.alloc(BLOCK, 1));
    expect(ram.has(blockId(ref(0)))).toBe(true);
    expect(origin.requests).toHaveLength(2);
  });

  it('loads (warm-up) onto disk without filling RAM, and reports already warm blocks without reading them', async () => {
    const origin = countingOrigin();
    const ram = new RamTier(BLOCK * 4);
    const disk = fakeDisk(BLOCK * 4);
    const store = new BlockStore({ ram, disk, origin: () => origin.source, logger: silentLogger() });
    expect(await store.load(ref(1))).toEqual({ source: 'origin', bytes: BLOCK });
    expect(ram.blockCount).toBe(0);
    expect(disk.has(blockId(ref(1)))).toBe(true);
    expect(await store.load(ref(1))).toEqual({ source: 'disk', bytes: BLOCK });
    await store.read(ref(2));
    await store.flush();
    expect(await store.load(ref(2))).toEqual({ source: 'disk', bytes: BLOCK });
    expect(origin.requests).toHaveLength(2);
  });

  it('shares a failed fill with its waiters and tries again on the next read', async () => {
    let fail = true;
    const store = new BlockStore({
      ram: new RamTier(BLOCK * 4),
      origin: () => ({ fetch: async (request) => {
        if (fail) throw new Error('origin down');
        return Buffer.alloc(request.end - request.start);
      } }),
      logger: silentLogger(),
    });
    await expect(Promise.all([store.read(ref(0)), store.read(ref(0))])).rejects.toThrow('origin down');
    expect(store.stats.originFailures).toBe(1);
    fail = false;
    expect((await store.read(ref(0))).source).toBe('origin');
  });
});
