// The memory this process can have: its cgroup's memory limit when one is set (what a container's
// resources.limits.memory becomes), else the machine's MemTotal.
import * as fs from 'node:fs';

/** The memory the process can have, and where that number came from (for messages). */
export interface MemoryLimit {
  bytes: number;
  /** Where `bytes` was read, e.g. "the cgroup memory limit (/sys/fs/cgroup/memory.max)" or "MemTotal (/proc/meminfo)". */
  source: string;
}

/** Reads a file's text, or undefined when it cannot be read (injectable for tests). */
export type ReadText = (file: string) => string | undefined;

const readTextFile: ReadText = (file) => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** cgroup v1 writes "no limit" as a page-rounded 2^63-1; anything from 2^62 up means unlimited. */
const UNLIMITED_FROM = 2 ** 62;

/** `dir` and each of its ancestors, deepest first: "/a/b" gives "/a/b", "/a", "". */
function selfAndAncestors(dir: string): string[] {
  const parts = dir.split('/').filter((part) => part !== '');
  return Array.from({ length: parts.length + 1 }, (_, i) => (parts.length - i === 0 ? '' : `/${parts.slice(0, parts.length - i).join('/')}`));
}

/** The smallest limit among the files that exist and hold a number (an ancestor's limit binds its children too). */
function smallestLimit(files: string[], read: ReadText): { bytes: number; file: string } | undefined {
  let smallest: { bytes: number; file: string } | undefined;
  for (const file of files) {
    const text = read(file)?.trim();
    if (text === undefined || !/^\d+$/.test(text)) continue; // "max", or no such file in this namespace
    const bytes = Number(text);
    if (bytes >= UNLIMITED_FROM) continue;
    if (smallest === undefined || bytes < smallest.bytes) smallest = { bytes, file };
  }
  return smallest;
}

/** The memory limit of the process's cgroup (v2 memory.max, or v1 memory.limit_in_bytes), undefined when none is set. */
function cgroupLimit(read: ReadText): { bytes: number; file: string } | undefined {
  const lines = (read('/proc/self/cgroup') ?? '').split('\n');
  const files: string[] = [];
  for (const line of lines) {
    const [, controllers, dir] = /^\d+:([^:]*):(.*)$/.exec(line.trim()) ?? [];
    if (dir === undefined) continue;
    // v2: "0::/path"; v1: "4:memory:/path".
    if (controllers === '') files.push(...selfAndAncestors(dir).map((at) => `/sys/fs/cgroup${at}/memory.max`));
    else if (controllers?.split(',').includes('memory')) files.push(...selfAndAncestors(dir).map((at) => `/sys/fs/cgroup/memory${at}/memory.limit_in_bytes`));
  }
  return smallestLimit(files, read);
}

/** MemTotal from /proc/meminfo, in bytes; undefined when it cannot be read. */
function memTotal(read: ReadText): number | undefined {
  const match = /^MemTotal:\s+(\d+)\s*kB$/m.exec(read('/proc/meminfo') ?? '');
  return match ? Number(match[1]) * 1024 : undefined;
}

/**
 * The memory this process can have: the smaller of its cgroup memory limit (if one is set) and the machine's
 * MemTotal; undefined when neither can be read (not Linux). `read` reads a file (tests pass a fake machine).
 */
export function readMemoryLimit(read: ReadText = readTextFile): MemoryLimit | undefined {
  const total = memTotal(read);
  const cgroup = cgroupLimit(read);
  if (cgroup !== undefined && (total === undefined || cgroup.bytes < total)) return { bytes: cgroup.bytes, source: `the cgroup memory limit (${cgroup.file})` };
  return total === undefined ? undefined : { bytes: total, source: 'MemTotal (/proc/meminfo)' };
}
