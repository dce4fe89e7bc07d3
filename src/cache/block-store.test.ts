import type { BlockRequest, BlockFetcher } from '../blocks/block-fetcher';
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
  const fetcher: BlockFetcher = {
    fetch: async (request) => {
      requests.push(request);
      await gate;
      return Buffer.alloc(request.end - request.start, request.start / BLOCK + 1);
    },
  };
  return { fetcher, requests };
}

/** A second RamTier standing in for the disk tier (same contract), named 'disk'. */
function fakeDisk(capacity: number): Tier {
  return Object.defineProperty(new RamTier(capacity), 'name', { value: 'disk' }) as Tier;
}

describe('BlockStore', () => {
  it('fills a block once for every concurrent reader, with the exact range of the block', async () => {
    let open: () => void = () => undefined;
    const origin = countingOrigin(new Promise((resolve) => (open = resolve)));
    const store = new BlockStore({ ram: new RamTier(BLOCK * 4), origin: () => origin.fetcher, logger: silentLogger() });
    const reads = Array.from({ length: 5 }, () => store.read(ref(3)));
    open();
    const results = await Promise.all(reads);
    expect(origin.requests).toEqual([expect.objectContaining({ key: 'k', etag: 'e', start: 3 * BLOCK, end: 3 * BLOCK + 5 })]);
    expect(results.map((result) => result.servedFrom)).toEqual(['origin', 'origin', 'origin', 'origin', 'origin']);
    expect(store.stats).toMatchObject({ originFills: 1, originBytes: 5, joins: 4 });
    expect((await store.read(ref(3))).servedFrom).toBe('ram');
  });

  it('writes fills through to disk, and promotes a disk hit to RAM', async () => {
    const origin = countingOrigin();
    const ram = new RamTier(BLOCK);
    const disk = fakeDisk(BLOCK * 4);
    const store = new BlockStore({ ram, disk, origin: () => origin.fetcher, logger: silentLogger() });
    await store.read(ref(0));
    await store.flush();
    expect(disk.has(blockId(ref(0)))).toBe(true);
    await store.read(ref(1)); // pushes block 0 out of the one-block RAM tier
    await store.flush();
    expect(ram.has(blockId(ref(0)))).toBe(false);
    const again = await store.read(ref(0));
    expect(again.servedFrom).toBe('disk');
    expect(again.data).toEqual(Buffer.alloc(BLOCK, 1));
    expect(ram.has(blockId(ref(0)))).toBe(true);
    expect(origin.requests).toHaveLength(2);
  });

  it('loads (warm-up) onto disk without filling RAM, and reports already warm blocks without reading them', async () => {
    const origin = countingOrigin();
    const ram = new RamTier(BLOCK * 4);
    const disk = fakeDisk(BLOCK * 4);
    const store = new BlockStore({ ram, disk, origin: () => origin.fetcher, logger: silentLogger() });
    expect(await store.load(ref(1))).toEqual({ servedFrom: 'origin', bytes: BLOCK });
    expect(ram.blockCount).toBe(0);
    expect(disk.has(blockId(ref(1)))).toBe(true);
    expect(await store.load(ref(1))).toEqual({ servedFrom: 'disk', bytes: BLOCK });
    await store.read(ref(2));
    await store.flush();
    expect(await store.load(ref(2))).toEqual({ servedFrom: 'disk', bytes: BLOCK });
    expect(origin.requests).toHaveLength(2);
  });

  it('loads (warm-up) into RAM on a server without a disk tier, where the least recently used blocks make room', async () => {
    const origin = countingOrigin();
    const ram = new RamTier(BLOCK * 2);
    const store = new BlockStore({ ram, origin: () => origin.fetcher, logger: silentLogger() });
    expect(await store.load(ref(0))).toEqual({ servedFrom: 'origin', bytes: BLOCK });
    expect(ram.has(blockId(ref(0)))).toBe(true);
    expect(await store.load(ref(0))).toEqual({ servedFrom: 'ram', bytes: BLOCK });
    expect(origin.requests).toHaveLength(1);
    // A warm-up larger than RAM keeps only its last RAM-full: the first blocks it loaded are pushed out.
    await store.load(ref(1));
    await store.load(ref(2));
    expect([0, 1, 2].map((index) => ram.has(blockId(ref(index))))).toEqual([false, true, true]);
    expect(await store.load(ref(0))).toEqual({ servedFrom: 'origin', bytes: BLOCK });
    expect(origin.requests).toHaveLength(4);
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
    expect((await store.read(ref(0))).servedFrom).toBe('origin');
  });

  describe('fills a block once, whatever the interleaving (the exact origin GET count)', () => {
    /** A promise and the function that resolves it. */
    function gate(): { opened: Promise<void>; open: () => void } {
      let open: () => void = () => undefined;
      const opened = new Promise<void>((resolve) => (open = resolve));
      return { opened, open };
    }

    /** The fake disk tier, whose put() waits for `putGate` before committing, and whose get() can be held by `getGate`. */
    function heldDisk(capacity: number) {
      const inner = fakeDisk(capacity);
      const holds = { put: undefined as Promise<void> | undefined, get: undefined as Promise<void> | undefined };
      const putsStarted: string[] = [];
      const disk: Tier = Object.create(inner, {
        put: { value: async (id: string, data: Buffer) => { putsStarted.push(id); await holds.put; await inner.put(id, data); } },
        get: { value: async (id: string) => { const found = await inner.get(id); await holds.get; return found; } },
      }) as Tier;
      return { disk, holds, putsStarted };
    }

    it('serves a filled block from memory while its disk write is held and RAM is smaller than a block', async () => {
      const origin = countingOrigin();
      const { disk, holds, putsStarted } = heldDisk(BLOCK * 4);
      const write = gate();
      holds.put = write.opened;
      const store = new BlockStore({ ram: new RamTier(BLOCK / 2), disk, origin: () => origin.fetcher, logger: silentLogger() });
      expect((await store.read(ref(0))).servedFrom).toBe('origin');
      expect(putsStarted).toEqual([blockId(ref(0))]);
      expect(disk.has(blockId(ref(0)))).toBe(false);
      const second = await store.read(ref(0));
      expect(second.data).toEqual(Buffer.alloc(BLOCK, 1));
      write.open();
      await store.flush();
      expect((await store.read(ref(0))).servedFrom).toBe('disk');
      expect(origin.requests).toHaveLength(1);
    });

    it('looks in the tiers again inside the single-flight: a reader whose disk lookup missed while another fill completed does not fill again', async () => {
      const origin = countingOrigin();
      const { disk, holds } = heldDisk(BLOCK * 4);
      const slowLookup = gate();
      holds.get = slowLookup.opened;
      const store = new BlockStore({ ram: new RamTier(BLOCK / 2), disk, origin: () => origin.fetcher, logger: silentLogger() });
      const late = store.read(ref(1)); // misses RAM, then its disk lookup misses and is held
      await new Promise((resolve) => setImmediate(resolve));
      holds.get = undefined;
      const first = await store.read(ref(1)); // a whole fill completes meanwhile
      expect(first.servedFrom).toBe('origin');
      await store.flush();
      slowLookup.open();
      const block = await late;
      expect(block.servedFrom).toBe('disk');
      expect(block.data).toEqual(Buffer.alloc(BLOCK, 2));
      expect(origin.requests).toHaveLength(1);
    });

    it('a warm-up load racing a reader: one GET whether the load joins the read or follows it before the disk write lands', async () => {
      const fetchGate = gate();
      const origin = countingOrigin(fetchGate.opened);
      const { disk, holds } = heldDisk(BLOCK * 4);
      const write = gate();
      holds.put = write.opened;
      const store = new BlockStore({ ram: new RamTier(BLOCK / 2), disk, origin: () => origin.fetcher, logger: silentLogger() });
      const reading = store.read(ref(2));
      const joining = store.load(ref(2)); // joins the read's flight
      fetchGate.open();
      expect((await reading).servedFrom).toBe('origin');
      const following = store.load(ref(2)); // after the flight, before the disk write commits
      let loaded = false;
      void Promise.all([joining, following]).then(() => (loaded = true));
      await new Promise((resolve) => setImmediate(resolve));
      expect(loaded).toBe(false); // a load returns once the block is on disk
      write.open();
      expect(await joining).toEqual({ servedFrom: 'origin', bytes: BLOCK });
      expect(await following).toEqual({ servedFrom: 'ram', bytes: BLOCK });
      expect(disk.has(blockId(ref(2)))).toBe(true);
      expect(origin.requests).toHaveLength(1);
      expect(store.stats).toMatchObject({ originFills: 1, joins: 1 });
    });

    it('a read racing a warm-up load that started first: one GET, and the read gets the bytes', async () => {
      const fetchGate = gate();
      const origin = countingOrigin(fetchGate.opened);
      const { disk } = heldDisk(BLOCK * 4);
      const store = new BlockStore({ ram: new RamTier(BLOCK * 4), disk, origin: () => origin.fetcher, logger: silentLogger() });
      const loading = store.load(ref(0));
      const reading = store.read(ref(0));
      fetchGate.open();
      expect(await loading).toEqual({ servedFrom: 'origin', bytes: BLOCK });
      expect((await reading).data).toEqual(Buffer.alloc(BLOCK, 1));
      expect(disk.has(blockId(ref(0)))).toBe(true);
      expect(origin.requests).toHaveLength(1);
    });
  });
});
