// Running a FUSE mount process (granary or rclone): start it, wait until the kernel lists the mount,
// and take it down again whatever state it is in.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findMount, readMountInfo } from '../../src/system/mountinfo';
import { messageOf, run, waitUntil } from '../exec';

/** Longest a mount may take to show up in mountinfo. */
export const MOUNT_TIMEOUT_MS = 30_000;

/** Longest a polite unmount (and the process's own exit after it) may take before the lazy unmount and SIGKILL. */
export const UNMOUNT_TIMEOUT_MS = 15_000;

/** Characters of the mount log's last line quoted in an error. */
export const LOG_TAIL_CHARS = 600;

/** How to run one mount process. */
export interface MountSpec {
  command: string;
  args: string[];
  /** The whole environment of the process (credentials go here, never in args). */
  env: NodeJS.ProcessEnv;
  mountpoint: string;
  /** The type mountinfo shows once the mount is live (`fuse.granary`, `fuse.rclone`). */
  fsType: string;
  /** Where the process's stdout and stderr go. */
  logFile: string;
  /** The polite way to unmount; the process is expected to exit after it; rejects when refused. */
  unmount(child: ChildProcess, mountpoint: string): Promise<void>;
}

/** The last line of the mount log (a CLI prints its fatal error last), cut to LOG_TAIL_CHARS, and where the whole log is. */
function logTail(file: string): string {
  let last = '';
  try {
    last = fs.readFileSync(file, 'utf8').trim().split('\n').pop() ?? '';
  } catch {
    // no log yet
  }
  return `${last.slice(-LOG_TAIL_CHARS) || '(empty log)'} (log: ${file})`;
}

/** Mount processes started and not yet reaped, so that an interrupted bench can end them all. */
const live = new Map<ChildProcess, string>();

/** SIGKILLs every mount process still alive and lazily unmounts its mountpoint (the last resort of Ctrl-C). */
export async function killAllMounts(): Promise<void> {
  for (const [child, mountpoint] of live) {
    child.kill('SIGKILL');
    while (isMounted(mountpoint)) {
      if ((await run('umount', ['-l', mountpoint])).code !== 0) break;
    }
  }
  live.clear();
}

const isMounted = (mountpoint: string, fsType?: string) => {
  const entry = findMount(readMountInfo(), mountpoint);
  return entry !== undefined && (fsType === undefined || entry.fsType === fsType);
};

/** Starts the process and resolves once mountinfo lists the mountpoint with the expected type; on failure nothing is left behind. */
export async function startMount(spec: MountSpec): Promise<{ root: string; pid: number; detach(): Promise<void> }> {
  fs.mkdirSync(spec.mountpoint, { recursive: true });
  const mountpoint = fs.realpathSync(spec.mountpoint);
  const log = fs.openSync(spec.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(spec.command, spec.args, { env: spec.env, stdio: ['ignore', log, log] });
  } finally {
    fs.closeSync(log);
  }
  live.set(child, mountpoint);
  let exited: { code: number | null; signal: string | null } | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => { exited = { code, signal }; live.delete(child); resolve(); });
    child.once('error', (error) => { exited = { code: null, signal: error.message }; live.delete(child); resolve(); });
  });
  const detach = async () => {
    if (isMounted(mountpoint) && !exited) {
      // A refused polite unmount (busy: a reader still has a file open) goes straight to the fallbacks.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        spec.unmount(child, mountpoint).then(() => exit, () => undefined),
        new Promise((resolve) => { timer = setTimeout(resolve, UNMOUNT_TIMEOUT_MS); }),
      ]);
      clearTimeout(timer);
    }
    // Fallbacks: a lazy unmount of whatever is left (also a dead mount whose process is gone), then SIGKILL.
    for (let attempt = 0; attempt < 3 && isMounted(mountpoint); attempt += 1) await run('umount', ['-l', mountpoint]);
    if (!exited) {
      child.kill('SIGKILL');
      await exit;
    }
    if (isMounted(mountpoint)) throw new Error(`${mountpoint} is still mounted: run 'umount -l ${mountpoint}'`);
  };
  try {
    await waitUntil(() => {
      if (exited) throw new Error(`${path.basename(spec.command)} exited (${exited.code ?? exited.signal}) before mounting: ${logTail(spec.logFile)}`);
      return isMounted(mountpoint, spec.fsType);
    }, MOUNT_TIMEOUT_MS, () => `${spec.fsType} did not appear at ${mountpoint} within ${MOUNT_TIMEOUT_MS / 1000} s: ${logTail(spec.logFile)}`);
  } catch (error) {
    await detach().catch((cleanupError: unknown) => process.stderr.write(`bench: ${messageOf(cleanupError)}\n`));
    throw error;
  }
  return { root: mountpoint, pid: child.pid as number, detach };
}
