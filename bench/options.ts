// The bench's options: what each flag means and its default (the sizes).
import { GIB, KIB, MIB } from './units';

/** The workloads, one table row each, in table order. */
export const WORKLOAD_IDS = ['seq-read', 'seq-write', 'small-files', 'ls-lR', 'random-read'] as const;

/** One workload (`--only` takes a comma-separated list of these). */
export type WorkloadId = (typeof WORKLOAD_IDS)[number];

/**
 * The sides, one table column each: granary's mount, the peers' mounts (rclone and s3fs from Debian; JuiceFS,
 * geesefs and Mountpoint for S3 when on PATH), and the SDK straight at the bucket.
 */
export const SIDE_NAMES = ['granary', 'rclone', 's3fs', 'juicefs', 'geesefs', 'mount-s3', 'direct'] as const;

/** One side (`--sides` takes a comma-separated list of these). */
export type SideName = (typeof SIDE_NAMES)[number];

/** Everything one bench run is told. */
export interface BenchOptions {
  /** Size of the big file (sequential read, sequential write, random reads). */
  size: number;
  /** Number of small files (read and listed). */
  files: number;
  /** Size of each small file. */
  fileSize: number;
  /** Readers (worker threads on a mount) or requests in flight (direct) of the parallel rows, and direct's ranges/parts in flight. */
  parallel: number;
  /** Measured runs per cell; the table shows their median. */
  runs: number;
  only: WorkloadId[];
  sides: SideName[];
  /** Keep the server's data dir (the bucket) instead of deleting it. */
  keep: boolean;
  /** Also write every run's raw numbers to this file. */
  json?: string;
  /** Reads of the random-read row (spread over the readers). */
  randomReads: number;
  /** Size of each read() and write() on a mount, and of each random read. */
  blockBytes: number;
  /** Size of each ranged GET and multipart part of the direct side. */
  rangeBytes: number;
  /** Longest one measured run may take before it is stopped and shown as an error. */
  timeoutMs: number;
  /** Seed of the random data and the random offsets. */
  seed: number;
  /** Put bench/expect-proxy.ts in front of the server for the sides that send `Expect: 100-Continue` (off: to see the wait it removes). */
  expectFix: boolean;
  /** The server speaks https, with a self-signed certificate made for the run that every side trusts (off: plain http). */
  tls: boolean;
}

/** Defaults: the sizes. */
export const DEFAULT_OPTIONS: BenchOptions = {
  size: GIB,
  files: 2000,
  fileSize: 64 * KIB,
  parallel: 16,
  runs: 3,
  only: [...WORKLOAD_IDS],
  sides: [...SIDE_NAMES],
  keep: false,
  randomReads: 256,
  blockBytes: MIB,
  rangeBytes: 8 * MIB,
  timeoutMs: 900_000,
  seed: 42,
  expectFix: true,
  tls: false,
};

/** Parses a comma-separated list of allowed names; throws naming the allowed ones. */
export function parseList<T extends string>(text: string, allowed: readonly T[], what: string): T[] {
  const names = text.split(',').map((name) => name.trim()).filter(Boolean);
  const unknown = names.filter((name) => !allowed.includes(name as T));
  if (unknown.length > 0 || names.length === 0) throw new Error(`unknown ${what} "${unknown.join(',') || text}": choose from ${allowed.join(',')}`);
  return allowed.filter((name) => names.includes(name));
}

/** Checks the combination of options; throws with the flag to change. */
export function checkOptions(options: BenchOptions): void {
  const positive: Array<[keyof BenchOptions, string]> = [['files', '--files'], ['parallel', '--parallel'], ['runs', '--runs'], ['randomReads', '--random-reads']];
  for (const [key, flag] of positive) {
    const value = options[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new Error(`${flag} must be a whole number of at least 1`);
  }
  if (options.size < options.blockBytes) throw new Error(`--size must be at least one block (${options.blockBytes} bytes)`);
  if (options.fileSize > options.size) throw new Error('--file-size must not exceed --size (the small files are cut from the big file\'s data)');
}
