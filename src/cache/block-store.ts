// The cache server's store of blocks: RAM tier, then disk tier, then one origin fill per block however
// many readers ask at once (groupcache's Group.Get: local lookup, then load through single-flight).
import type { BlockFetcher } from '../blocks/block-fetcher';
import type { Logger } from '../log/logger';
import { blockId, blockRange, type BlockRef } from './block';
import type { LoadResult } from './protocol';
import { SingleFlight } from '../util/single-flight';
import type { ServedFrom, Tier } from './tiers/tier';

/** A block's bytes and the tier (or the origin) they came from. */
export interface StoredBlock {
  data: Buffer;
  servedFrom: ServedFrom;
}

/** Counters of a BlockStore, plain numbers that become metrics. */
export interface BlockStoreStats {
  /** Blocks fetched from the object store. */
  originFills: number;
  originBytes: number;
  /** Fills that failed. */
  originFailures: number;
  /** Reads that joined a fill already in flight. */
  joins: number;
}

/** Options of a BlockStore. */
export interface BlockStoreOptions {
  ram: Tier;
  /** The disk tier; none on a RAM-only server. */
  disk?: Tier;
  /** Fills a block from the object store of `bucket` (exact range, If-Match its ETag, bounded retries). */
  origin: (bucket: string) => BlockFetcher;
  logger: Logger;
  /** Hears the duration of every successful fill (seconds), for the latency histogram. */
  onFill?: (seconds: number, bytes: number) => void;
  /** Aborts fills in flight when the server shuts down. */
  signal?: AbortSignal;
}

/** A block filled from the origin whose disk write has not committed yet: served from memory until it has. */
interface PendingWrite {
  data: Buffer;
  /** Settles when the disk tier stored (or refused) the block; never rejects. */
  written: Promise<void>;
}

/**
 * Blocks by BlockRef: answered from RAM, else from disk (and promoted to RAM), else filled from the object
 * store once and written to both tiers. Reads put fills in RAM and write them through to disk in the
 * background; loads (warm-up) put them on disk and wait, so that a finished warm-up is on disk and does
 * not push hot blocks out of RAM.
 *
 * Why a block is filled once, whatever the interleaving (groupcache's Group.load has the same two guards):
 * - a fill's bytes stay reachable from the moment it settles: in RAM if RAM keeps them, and in `pending`
 *   until the disk tier has committed them, so a reader arriving after the fill and before the disk write
 *   (RAM smaller than a block, or the block already pushed out by others) finds them there;
 * - the single-flight call looks in the tiers again before going to the origin: a reader whose own lookup
 *   missed while another reader's fill completed (its disk read was slower than that fill) joins nothing,
 *   because the flight had settled, and would fill a second time without that second look.
 */
export class BlockStore {
  /** Counters since start. */
  readonly stats: BlockStoreStats = { originFills: 0, originBytes: 0, originFailures: 0, joins: 0 };
  private readonly fills = new SingleFlight<StoredBlock>();
  /** Fills whose disk write is in flight, by block id (only with a disk tier). */
  private readonly pending = new Map<string, PendingWrite>();

  constructor(private readonly options: BlockStoreOptions) {}

  /** The block's bytes, from the fastest place that has them. */
  async read(ref: BlockRef): Promise<StoredBlock> {
    const id = blockId(ref);
    return (await this.lookup(id)) ?? (await this.fill(id, ref, 'read'));
  }

  /** Makes sure the block is cached (on disk when there is a disk tier), without reading a cached one. */
  async load(ref: BlockRef): Promise<LoadResult> {
    const id = blockId(ref);
    const { ram, disk } = this.options;
    const { start, end } = blockRange(ref);
    if (disk?.has(id)) return { servedFrom: 'disk', bytes: end - start };
    const pending = this.pending.get(id);
    if (pending) {
      await pending.written;
      return { servedFrom: 'ram', bytes: pending.data.length };
    }
    if (ram.has(id)) {
      if (!disk) return { servedFrom: 'ram', bytes: end - start };
      const data = await ram.get(id);
      if (data) {
        await this.writeThrough(id, data);
        return { servedFrom: 'ram', bytes: data.length };
      }
    }
    const block = await this.fill(id, ref, 'load');
    // A read's fill that this load joined writes to disk in the background: a load returns once it is there.
    await this.pending.get(id)?.written;
    return { servedFrom: block.servedFrom, bytes: block.data.length };
  }

  /** Resolves once every background disk write has finished (at shutdown, and in tests). */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending.values()].map((write) => write.written));
  }

  /**
   * The block from RAM, a pending disk write or the disk tier (promoted to RAM when `promote`), or undefined.
   * The order matters: a pending write leaves `pending` only after the disk committed it, so looking at
   * `pending` before the disk never misses a block in between.
   */
  private async lookup(id: string, promote = true): Promise<StoredBlock | undefined> {
    const { ram, disk } = this.options;
    const inRam = await ram.get(id);
    if (inRam) return { data: inRam, servedFrom: 'ram' };
    const pending = this.pending.get(id);
    if (pending) return { data: pending.data, servedFrom: 'ram' };
    if (!disk) return undefined;
    const onDisk = await disk.get(id);
    if (!onDisk) return undefined;
    if (promote) await ram.put(id, onDisk);
    return { data: onDisk, servedFrom: 'disk' };
  }

  /**
   * One origin GET for the block, shared by every concurrent reader and loader of it: the flight looks in the
   * tiers once more first (see the class comment), and stores what it fetched before it settles. A read's fill
   * goes to RAM and to disk in the background; a load's goes to disk only (to RAM on a RAM-only server).
   */
  private fill(id: string, ref: BlockRef, purpose: 'read' | 'load'): Promise<StoredBlock> {
    if (this.fills.has(id)) this.stats.joins++;
    return this.fills.run(id, async () => {
      const cached = await this.lookup(id, purpose === 'read');
      if (cached) return cached;
      const data = await this.fetch(ref);
      const { ram, disk } = this.options;
      if (purpose === 'read' || !disk) await ram.put(id, data);
      if (disk) void this.writeThrough(id, data);
      return { data, servedFrom: 'origin' };
    });
  }

  /** The block's bytes from the object store: exact range, If-Match its ETag, with the origin's retries. */
  private async fetch(ref: BlockRef): Promise<Buffer> {
    const { start, end } = blockRange(ref);
    const began = process.hrtime.bigint();
    try {
      const data = await this.options.origin(ref.bucket).fetch({ key: ref.key, etag: ref.etag, start, end, ...(this.options.signal && { signal: this.options.signal }) });
      this.stats.originFills++;
      this.stats.originBytes += data.length;
      this.options.onFill?.(Number(process.hrtime.bigint() - began) / 1e9, data.length);
      return data;
    } catch (error) {
      this.stats.originFailures++;
      throw error;
    }
  }

  /** Writes the block to the disk tier once (joining a write in flight), serving it from `pending` until committed. */
  private writeThrough(id: string, data: Buffer): Promise<void> {
    const disk = this.options.disk;
    if (!disk || disk.has(id)) return Promise.resolve();
    const inFlight = this.pending.get(id);
    if (inFlight) return inFlight.written;
    const written = disk
      .put(id, data)
      .catch((error: unknown) => this.options.logger.warn({ err: error, blockId: id }, 'writing a block to the disk tier failed'))
      .finally(() => this.pending.delete(id));
    this.pending.set(id, { data, written });
    return written;
  }
}
