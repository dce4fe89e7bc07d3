// What a mount process tree costs during a measured run: CPU ticks from just before to just after, and the
// peak of the tree's summed resident memory, polled from /proc.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { parseRssBytes } from '../e2e/support/process-usage';
import { parseStat, treeOf, treeTicks, type ProcStat } from './proc';

/** How often the tree's resident memory is polled. */
export const RSS_POLL_MS = 100;

/** What the tree used between start and stop. */
export interface MountUsage {
  /** CPU (user + system) of the whole tree, in clock ticks. */
  ticks: number;
  /** Clock ticks per second (CLK_TCK). */
  ticksPerSecond: number;
  /** Highest sum of VmRSS over the tree seen by the polls, in bytes. */
  peakRssBytes: number;
}

/** A watch in progress; stop() takes the last sample and ends the polling (later calls return the same figures). */
export interface UsageWatch {
  stop(): MountUsage;
}

let ticksPerSecond: number | undefined;

/** CLK_TCK, asked of getconf once; 100 (Linux's value on every common architecture) when getconf fails. */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Reads a /proc file, or undefined when the process is gone (it may exit between the listing and the read). */
function readProc(pid: number, file: string): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

/** The stat of every process on the machine (a tree is found by parent pids, so all are needed). */
function allStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const text = readProc(Number(name), 'stat');
    if (text !== undefined) stats.push(parseStat(text));
  }
  return stats;
}

/** The summed VmRSS of the tree of `root` now, in bytes. */
function treeRssBytes(root: number): number {
  return treeOf(root, allStats()).reduce((sum, pid) => sum + parseRssBytes(readProc(pid, 'status') ?? ''), 0);
}

/** Starts watching the process tree of `root` (a mount process): CPU from now, resident memory every RSS_POLL_MS. */
export function watchUsage(root: number): UsageWatch {
  const startTicks = treeTicks(root, allStats());
  let peakRssBytes = treeRssBytes(root);
  const timer = setInterval(() => {
    peakRssBytes = Math.max(peakRssBytes, treeRssBytes(root));
  }, RSS_POLL_MS);
  // The polls must not keep the bench alive if a run is abandoned.
  timer.unref();
  let stopped: MountUsage | undefined;
  return {
    stop() {
      clearInterval(timer);
      stopped ??= { ticks: treeTicks(root, allStats()) - startTicks, ticksPerSecond: clockTicks(), peakRssBytes: Math.max(peakRssBytes, treeRssBytes(root)) };
      return stopped;
    },
  };
}
