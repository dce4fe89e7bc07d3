// The cluster cache bench's options: what each flag means, its default, and which rows a run makes.
import { DEFAULT_READ_PATH_CONFIG } from '../../src/config/read-path';
import { GIB, MIB } from '../units';

/** The groups of rows (`--only` takes a comma-separated list of these), in table order. */
export const CACHE_ROW_GROUPS = ['cold', 'warm-ram', 'warm-disk', 'gateway', 'fan-out', 'hot-blocks', 'ceiling'] as const;

/** One group of rows. */
export type CacheRowGroup = (typeof CACHE_ROW_GROUPS)[number];

/** The columns of the table: granary through the cluster cache, granary alone, rclone, the SDK, a local file. */
export const CACHE_COLUMNS = ['granary+cache', 'granary', 'rclone', 'direct', 'local'] as const;

/** One column. */
export type CacheColumn = (typeof CACHE_COLUMNS)[number];

/** Everything one run of the cluster cache bench is told. */
export interface CacheBenchOptions {
  /** Size of the file every row reads. */
  size: number;
  /** Measured runs per cell; the table shows their median. */
  runs: number;
  only: CacheRowGroup[];
  /** Simulated nodes: one cache server each, on 127.0.0.11, .12, ...; the fan-out row puts one mount on each. */
  nodes: number;
  /** Readers on each node's mount in the fan-out row. */
  readersPerNode: number;
  /** Readers on the one mount of the hot-blocks row. */
  hotReaders: number;
  /** In the hot-blocks row, each reader starts once the one before it has read this many bytes. */
  staggerBytes: number;
  /** RAM tier of each cache server (--ram-bytes). */
  serverRamBytes: number;
  /** Disk tier of each cache server (--disk-bytes). */
  serverDiskBytes: number;
  /** Size of each read() on a mount. */
  blockBytes: number;
  /** The direct side's ranged GETs, and the S3 gateway rows' GetObject calls: size and number in flight. */
  rangeBytes: number;
  parallel: number;
  /** Longest one measured run may take before it is stopped and shown as an error. */
  timeoutMs: number;
  /** Seed of the file's random bytes. */
  seed: number;
  /** Also write every run's raw numbers to this file. */
  json?: string;
}

/** The defaults: the 1 GiB file, 3 nodes × 2 readers, 3 staggered readers on one node. */
export const DEFAULT_CACHE_OPTIONS: CacheBenchOptions = {
  size: GIB,
  runs: 3,
  only: [...CACHE_ROW_GROUPS],
  nodes: 3,
  readersPerNode: 2,
  hotReaders: 3,
  staggerBytes: 64 * MIB,
  serverRamBytes: 0,
  serverDiskBytes: 0,
  blockBytes: MIB,
  rangeBytes: 8 * MIB,
  parallel: 16,
  timeoutMs: 900_000,
  seed: 42,
};

/** Largest number of simulated nodes (loopback addresses 127.0.0.11 and up). */
export const MAX_NODES = 200;

/** The mount's default RAM cache (--ram-cache-bytes): the node's copy of hot blocks, shared by the readers of the mount. */
export const DEFAULT_MOUNT_RAM_CACHE_BYTES = DEFAULT_READ_PATH_CONFIG.cacheBytes;

/** Loopback address of simulated node `index` (0-based): 127.0.0.11, 127.0.0.12, ... */
export function nodeAddress(index: number): string {
  return `127.0.0.${11 + index}`;
}

/**
 * Fills in the cache servers' caps left at 0: RAM = the whole file on each server (the warm-RAM row needs
 * every block to stay in RAM, and ring shares are uneven), disk = twice that.
 */
export function withServerCaps(options: CacheBenchOptions): CacheBenchOptions {
  const serverRamBytes = options.serverRamBytes || Math.max(options.size, 64 * MIB);
  return { ...options, serverRamBytes, serverDiskBytes: options.serverDiskBytes || 2 * serverRamBytes };
}

/** Checks the combination of options; throws with the flag to change. */
export function checkCacheOptions(options: CacheBenchOptions): void {
  const whole: Array<[keyof CacheBenchOptions, string, number]> = [['runs', '--runs', 1], ['nodes', '--nodes', 1], ['readersPerNode', '--readers-per-node', 1], ['hotReaders', '--hot-readers', 2], ['parallel', '--parallel', 1]];
  for (const [key, flag, least] of whole) {
    const value = options[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < least) throw new Error(`${flag} must be a whole number of at least ${least}`);
  }
  if (options.nodes > MAX_NODES) throw new Error(`--nodes must be at most ${MAX_NODES}`);
  if (options.size < options.blockBytes) throw new Error(`--size must be at least one read (${options.blockBytes} bytes)`);
  if (options.staggerBytes >= options.size) throw new Error('--stagger must be smaller than --size, or the hot-blocks readers never overlap');
}
