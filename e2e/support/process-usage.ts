// What a process holds, read from /proc: its open file descriptors and its resident memory, to check that
// an attack on a server leaves both bounded.
import * as fs from 'node:fs';

/** Open file descriptors of process `pid` (entries of /proc/PID/fd). */
export function openFileDescriptors(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** The resident set size in /proc/<pid>/status text (`VmRSS:   1234 kB`), in bytes; 0 for a process without one (a zombie, a kernel thread). */
export function parseRssBytes(status: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Resident set size of process `pid` in bytes (VmRSS of /proc/PID/status). */
export function residentBytes(pid: number): number {
  return parseRssBytes(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
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
