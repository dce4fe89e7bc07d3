// The machine around the bench: page cache, what it is, what code runs.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readMountInfo } from '../src/system/mountinfo';
import { messageOf, run } from './exec';
import { GIB, MIB } from './units';

/**
 * Makes a run's clients cold and its origin warm: drops the page cache, then reads the origin's files in
 * `bucketDir` back into it. Returns a function that does this before each run; the first failure to drop
 * the caches (not root) is noted once in `notes`, and the runs go on.
 */
export function originPreparer(bucketDir: string, notes: string[]): () => Promise<void> {
  let noted = false;
  return async () => {
    try {
      await dropCaches();
    } catch (error) {
      if (!noted) notes.push(messageOf(error));
      noted = true;
    }
    warmDirectory(bucketDir);
  };
}

/** Where the kernel takes the order to drop clean caches. */
export const DROP_CACHES_PATH = '/proc/sys/vm/drop_caches';

/** Read size when pulling files into the page cache. */
export const WARM_READ_BYTES = 8 * MIB;

/** Writes dirty pages back and drops the page cache, dentries and inodes (`sync; echo 3 > drop_caches`); needs root. */
export async function dropCaches(): Promise<void> {
  await run('sync', []);
  try {
    fs.writeFileSync(DROP_CACHES_PATH, '3');
  } catch (error) {
    throw new Error(`cannot drop the page cache (${(error as Error).message}): run the bench as root, or cold rows are not cold`, { cause: error });
  }
}

/** Reads every file under `dir` once so that the origin serves it from the page cache; returns the bytes read. */
export function warmDirectory(dir: string): number {
  const buffer = Buffer.allocUnsafe(WARM_READ_BYTES);
  let total = 0;
  const walk = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const file = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.isFile()) {
        const fd = fs.openSync(file, 'r');
        try {
          for (let read = 1; read > 0; total += read) read = fs.readSync(fd, buffer, 0, buffer.length, null);
        } finally {
          fs.closeSync(fd);
        }
      }
    }
  };
  walk(dir);
  return total;
}

/** `2 × AMD EPYC, 23.4 GiB RAM, Linux 6.1`: what the numbers were measured on. */
export function machineSummary(): string {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'} (nproc ${os.availableParallelism()}), ${(os.totalmem() / GIB).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`;
}

/** The short commit hash of the checkout, with `-dirty` when src/ has uncommitted changes; `unknown` outside git. */
export async function gitRevision(root: string): Promise<string> {
  const head = await run('git', ['-C', root, 'rev-parse', '--short', 'HEAD']);
  if (head.code !== 0) return 'unknown';
  const status = await run('git', ['-C', root, 'status', '--porcelain', '--', 'src']);
  return `${head.stdout.trim()}${status.stdout.trim() ? '-dirty' : ''}`;
}

/** The type and source of the filesystem that holds `file` (`ext4 on /dev/vda`), from mountinfo. */
export function filesystemOf(file: string): string {
  const real = fs.realpathSync(file);
  let best: { mountPoint: string; fsType: string; source: string } | undefined;
  for (const entry of readMountInfo()) {
    const inside = real === entry.mountPoint || real.startsWith(entry.mountPoint.endsWith('/') ? entry.mountPoint : `${entry.mountPoint}/`);
    if (inside && (!best || entry.mountPoint.length >= best.mountPoint.length)) best = entry;
  }
  return best ? `${best.fsType} on ${best.source}` : 'unknown filesystem';
}

/** Removes a scratch folder, unless something is still mounted inside it (a recursive delete would go through the mount into the bucket). */
export function removeScratch(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const real = fs.realpathSync(dir);
  const mounted = readMountInfo().filter((entry) => entry.mountPoint === real || entry.mountPoint.startsWith(`${real}/`));
  if (mounted.length > 0) {
    throw new Error(`not removing ${real}: ${mounted.map((entry) => entry.mountPoint).join(', ')} still mounted; run 'umount -l' on it, then remove the folder`);
  }
  fs.rmSync(real, { recursive: true, force: true });
}
