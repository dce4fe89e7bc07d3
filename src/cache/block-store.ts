// The cache server's store of blocks: RAM tier, then disk tier, then one origin fill per block however
// many readers ask at once (groupcache's Group.Get: local lookup, then load through single-flight).
import type { BlockSource } from '../fs/read/block-source';
import type { Logger } from '../log/logger';
import { blockId, blockRange, type BlockRef } from './block';
import type { LoadResult } from './protocol';
import { SingleFlight } from './singleflight';
import type { BlockSourceName, Tier } from './tiers/tier';

/** A block's bytes and the tier (or the origin) they came from. */
export interface StoredBlock {
  data: Buffer;
  source: BlockSourceName;
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
  origin: (bucket: string) => BlockSource;
  logger: Logger;
  /** Hears the duration of every successful fill (seconds), for the latency histogram. */
  onFill?: (seconds: number, bytes: number) => void;
  /** Aborts fills in flight when the server shuts down. */
  signal?: AbortSignal;
}

/**
 * Blocks by BlockRef: answered from RAM, else from disk (and promoted to RAM), else filled from the object
 * store once and written to both tiers. Reads put fills in RAM and write them through to disk in the
 * background; loads (warm-up) put them on disk and wait, so that a finished warm-up is on disk and does
 * not push hot blocks out of RAM.
 */
export class BlockStore {
  /** Counters since start. */
  readonly stats: BlockStoreStats = { originFills: 0, originBytes: 0, originFailures: 0, joins: 0 };
  private readonly fills = new SingleFlight<Buffer>();
  /** Disk writes in the background, awaited by flush(). */
  private readonly writes = new Set<Promise<void>>();

  constructor(private readonly options: BlockStoreOptions) {}

  /** The block's bytes, from the fastest place that has them. */
  async read(ref: BlockRef): Promise<StoredBlock> {
    const id = blockId(ref);
    const { ram, disk } = this.options;
    const inRam = await ram.get(id);
    if (inRam) return { data: inRam, source: 'ram' };
    if (disk) {
      const onDisk = await disk.get(id);
      if (onDisk) {
        await ram.put(id, onDisk);
        return { data: onDisk, source: 'disk' };
      }
    }
    const data = await this.fill(id, ref);
    await ram.put(id, data);
    if (disk && !disk.has(id)) this.background(disk.put(id, data));
    return { data, source: 'origin' };
  }

  /** Makes sure the block is cached (on disk when there is a disk tier), without reading a cached one. */
  async load(ref: BlockRef): Promise<LoadResult> {
    const id = blockId(ref);
    const { ram, disk } = this.options;
    const length = blockRange(ref).end - blockRange(ref).start;
    if (disk?.has(id)) return { source: 'disk', bytes: length };
    if (ram.has(id)) {
      if (!disk) return { source: 'ram', bytes: length };
      const data = await ram.get(id);
      if (data) {
        await disk.put(id, data);
        return { source: 'ram', bytes: length };
      }
    }
    const data = await this.fill(id, ref);
    await (disk ?? ram).put(id, data);
    return { source: 'origin', bytes: data.length };
  }

  /** Resolves once every background disk write has finished (at shutdown, and in tests). */
  async flush(): Promise<void> {
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
  }

  /** One origin GET for the block, shared by every concurrent reader and loader of it. */
  private fill(id: string, ref: BlockRef): Promise<Buffer> {
    if (this.fills.has(id)) this.stats.joins++;
    return this.fills.run(id, async () => {
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
    });
  }

  private background(write: Promise<void>): void {
    const tracked = write.catch((error: unknown) => this.options.logger.warn({ err: error }, 'writing a block to the disk tier failed')).finally(() => this.writes.delete(tracked));
    this.writes.add(tracked);
  }
}
