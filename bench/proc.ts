// The pure part of measuring a mount's cost: parsing /proc/<pid>/stat and /proc/<pid>/status text, finding a
// process tree, and turning clock ticks and bytes into CPU seconds per GiB.
import { GIB } from './units';

/** What one /proc/<pid>/stat line says about CPU time, in clock ticks. */
export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime: this process's own threads. */
  ownTicks: number;
  /** cutime + cstime: its children that exited and that it reaped (their time moved here at the reap). */
  reapedTicks: number;
}

/** Parses one /proc/<pid>/stat line; throws naming the file's shape when it is not one. */
export function parseStat(text: string): ProcStat {
  // The command name (field 2) is in parentheses and may itself hold spaces and parentheses: split after the last ')'.
  const close = text.lastIndexOf(')');
  const pid = Number.parseInt(text, 10);
  // After ')': state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17), so field N is rest[N - 3].
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const field = (n: number) => Number(rest[n - 3]);
  const numbers = [field(4), field(14), field(15), field(16), field(17)];
  if (close < 0 || !Number.isInteger(pid) || numbers.some((value) => !Number.isInteger(value))) {
    throw new Error(`not a /proc/<pid>/stat line: "${text.slice(0, 80)}"`);
  }
  return { pid, ppid: field(4), ownTicks: field(14) + field(15), reapedTicks: field(16) + field(17) };
}

/** The pids of `root` and all its descendants among `stats` (root first); empty when root is not among them. */
export function treeOf(root: number, stats: readonly ProcStat[]): number[] {
  const children = new Map<number, number[]>();
  for (const stat of stats) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), stat.pid]);
  if (!stats.some((stat) => stat.pid === root)) return [];
  const tree: number[] = [];
  for (let queue = [root]; queue.length > 0;) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue = queue.concat(children.get(pid) ?? []);
  }
  return tree;
}

/**
 * CPU ticks the tree of `root` has used so far: every live process's own time plus what it reaped. A child that
 * exits moves its time into its parent's reaped time, so the sum keeps counting work done by children gone since.
 */
export function treeTicks(root: number, stats: readonly ProcStat[]): number {
  const inTree = new Set(treeOf(root, stats));
  return stats.filter((stat) => inTree.has(stat.pid)).reduce((sum, stat) => sum + stat.ownTicks + stat.reapedTicks, 0);
}

/** CPU seconds per GiB moved: `ticks` of CPU at `ticksPerSecond` (CLK_TCK) over `bytes`; throws on no bytes. */
export function cpuSecondsPerGib(ticks: number, ticksPerSecond: number, bytes: number): number {
  if (bytes <= 0) throw new Error('CPU per GiB of no bytes moved');
  return ticks / ticksPerSecond / (bytes / GIB);
}
