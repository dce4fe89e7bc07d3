// What every cache tier offers (RAM, disk): blocks by id, bounded by bytes, evicted least recently used.

/** Where a block's bytes can come from, as reported to readers and metrics. */
export const SERVED_FROM = ['ram', 'disk', 'origin'] as const;

/** Where a block's bytes came from, as reported to readers and metrics. */
export type ServedFrom = (typeof SERVED_FROM)[number];

/** Counters of one tier, plain numbers that become metrics. */
export interface TierStats {
  hits: number;
  misses: number;
  /** Blocks dropped to respect the byte cap (or, on disk, the free-space floor). */
  evictions: number;
  /** Blocks read back that failed their checks (checksum, format, or a file naming another block) and were dropped (disk only). */
  corruptions: number;
  /** Blocks not stored because they did not fit (larger than the cap, or no free space above the floor). */
  rejections: number;
}

/** A byte-capped store of blocks by id: RAM or disk. */
export interface Tier {
  readonly name: Exclude<ServedFrom, 'origin'>;
  /** The cap: bytes held never exceed it. */
  readonly capacityBytes: number;
  /** Bytes held now. */
  readonly usedBytes: number;
  /** Blocks held now. */
  readonly blockCount: number;
  readonly stats: TierStats;
  /** The block's bytes, marking it most recently used; undefined when absent (or, on disk, corrupt and now dropped). */
  get(id: string): Promise<Buffer | undefined>;
  /** Whether the tier holds `id`, without reading it or touching its recency. */
  has(id: string): boolean;
  /** Stores the block (replacing any), evicting least recently used blocks to make room; resolves when stored or rejected. */
  put(id: string, data: Buffer): Promise<void>;
  /** Drops the block if held. */
  delete(id: string): Promise<void>;
}
