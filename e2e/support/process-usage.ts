// What a process holds, read from /proc: its open file descriptors and its resident memory, to check that
// an attack on a server leaves both bounded.
import * as fs from 'node:fs';

/** Open file descriptors of process `pid` (entries of /proc/PID/fd). */
export function openFileDescriptors(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident set size of process `pid` in bytes (VmRSS of /proc/PID/status). */
export function residentBytes(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((entry) => entry.startsWith('VmRSS:'));
  const kib = /(\d+)\s*kB/.exec(line ?? '')?.[1];
  if (kib === undefined) throw new Error(`/proc/${pid}/status has no VmRSS line`);
  return Number(kib) * 1024;
}

/** The peaks of a process's descriptors and memory, sampled every `intervalMs` until stop() (which takes one last sample). */
export function sampleUsage(pid: number, intervalMs = 250): { stop(): { peakFds: number; peakRssBytes: number; samples: number } } {
  let peakFds = 0;
  let peakRssBytes = 0;
  let samples = 0;
  const sample = () => {
    try {
      peakFds = Math.max(peakFds, openFileDescriptors(pid));
      peakRssBytes = Math.max(peakRssBytes, residentBytes(pid));
      samples++;
    } catch {
      // The process is gone: its exit is the caller's failure to report, not the sampler's.
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { peakFds, peakRssBytes, samples };
    },
  };
}
