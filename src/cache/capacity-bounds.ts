// What a cache server's tiers may hold on the machine it runs on: --ram-bytes against the memory the process can
// have, --disk-bytes against what the disk dir's filesystem can hold. Pure decisions over machine facts.
import { formatByteSize } from '../config/size';

/** The memory the process can have and where that was read (src/system/memory-limit.ts reads it). */
export interface MemoryLimit {
  bytes: number;
  /** Named in messages, e.g. "the cgroup memory limit (/sys/fs/cgroup/memory.max)". */
  source: string;
}

/**
 * Memory the process needs besides the RAM tier: the JS heap, blocks in flight to readers and from the object
 * store, socket buffers. Less than this left under the limit draws a warning, since a container that reaches its
 * limit is OOM-killed and loses the whole tier at once. 1 GiB, the chart's cache.memoryOverhead default (the
 * chart sets the pod's limit to ram + memoryOverhead, so a default install is not warned).
 */
export const RAM_HEADROOM_BYTES = 1024 ** 3;

/** The verdict on --ram-bytes: refuse it (the process would be OOM-killed before the tier filled), warn, or fine. */
export type RamVerdict = { refuse: string } | { warn: string } | Record<string, never>;

/**
 * Judges --ram-bytes against the memory the process can have: refused above it (the tier could never fill: the
 * kernel kills the process first), a warning when less than RAM_HEADROOM_BYTES is left for the rest of the process,
 * fine otherwise or when `memory` is unknown.
 */
export function judgeRamBytes(ramBytes: number, memory: MemoryLimit | undefined): RamVerdict {
  if (memory === undefined) return {};
  const asked = `--ram-bytes ${formatByteSize(ramBytes)}`;
  const has = `${memory.source} is ${formatByteSize(memory.bytes)}`;
  const fits = formatByteSize(Math.max(0, memory.bytes - RAM_HEADROOM_BYTES));
  if (ramBytes > memory.bytes) {
    return { refuse: `${asked} is more memory than this process can have: ${has}; lower --ram-bytes (to at most ${fits}, leaving ${formatByteSize(RAM_HEADROOM_BYTES)} for the rest of the process) or raise the container's memory limit` };
  }
  if (memory.bytes - ramBytes < RAM_HEADROOM_BYTES) {
    return { warn: `${asked} leaves less than ${formatByteSize(RAM_HEADROOM_BYTES)} of the memory this process can have for the rest of it (${has}): it may be OOM-killed under load; lower --ram-bytes to at most ${fits} or raise the memory limit` };
  }
  return {};
}

/** The facts that bound a disk tier: what was asked, and what its filesystem has. */
export interface DiskFacts {
  /** --disk-bytes. */
  requestedBytes: number;
  /** Free bytes on the filesystem (statfs bavail × bsize). */
  availableBytes: number;
  /** Bytes of block files the tier already holds there (they are its to reuse). */
  heldBytes: number;
  /** --disk-free-floor: free bytes the tier always leaves. */
  floorBytes: number;
}

/** What a disk tier can hold: its effective capacity, and whether that is less than asked. */
export interface DiskFit {
  /** The tier's cap and the capacity it announces to the ring: the smaller of the request and what fits. */
  capacityBytes: number;
  /** What the filesystem can hold for the tier: free space plus what it holds, less the floor. */
  holdableBytes: number;
  /** The request was more than fits, and was lowered to capacityBytes. */
  clamped: boolean;
}

/**
 * The capacity a disk tier can really have: --disk-bytes, or what its filesystem can hold when that is less. Why
 * lower rather than refuse: one DaemonSet values file runs on nodes with disks of different sizes, and each
 * server should cache what its own node can hold instead of some nodes failing to start.
 */
export function fitDiskCapacity(facts: DiskFacts): DiskFit {
  const holdableBytes = Math.max(0, facts.availableBytes + facts.heldBytes - facts.floorBytes);
  const capacityBytes = Math.min(facts.requestedBytes, holdableBytes);
  return { capacityBytes, holdableBytes, clamped: capacityBytes < facts.requestedBytes };
}

/** The warning for a --disk-bytes lowered to what the filesystem of `dir` can hold. */
export function diskClampWarning(dir: string, facts: DiskFacts, fit: DiskFit): string {
  return (
    `--disk-bytes ${formatByteSize(facts.requestedBytes)} is more than the filesystem of ${dir} can hold: it has ` +
    `${formatByteSize(facts.availableBytes)} free and the tier holds ${formatByteSize(facts.heldBytes)} there, less the ` +
    `--disk-free-floor of ${formatByteSize(facts.floorBytes)}; caching at most ${formatByteSize(fit.capacityBytes)} on disk ` +
    `(and announcing that to the ring); lower --disk-bytes to at most that, or give the disk tier a larger filesystem`
  );
}
