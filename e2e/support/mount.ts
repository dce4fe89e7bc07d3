// Real `granary mount` processes for the e2e scenarios: the built CLI, credentials in the environment
// (never argv), ready once /proc/self/mountinfo lists the mountpoint as fuse.granary, and a teardown
// that always leaves the mountpoint unmounted (SIGTERM and wait, then `umount -l` if still there).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { findMount, readMountInfo, type MountEntry } from '../../src/system/mountinfo';
import { builtCli } from './built-cli';
import { stopProcess } from './process';
import type { TestS3 } from './s3-server';

/** Filesystem type a granary mount shows in mountinfo. */
export const GRANARY_FS_TYPE = 'fuse.granary';

/** How long a mount may take to appear in mountinfo before the helper gives up. */
export const MOUNT_READY_TIMEOUT_MS = 30_000;

/** How long SIGTERM may take (the mount process waits up to 10 s for the kernel after umount). */
export const MOUNT_STOP_GRACE_MS = 15_000;

/** Lines of the mount log quoted when a test fails. */
export const LOG_TAIL_LINES = 40;

/** Keeps at most this many characters of a mount's stderr in memory. */
const MAX_LOG_CHARS = 1024 * 1024;

/** What to mount and how. */
export interface MountOptions {
  /** s3://bucket/prefix or a local folder. */
  source: string;
  /** An existing empty directory. */
  mountpoint: string;
  /** Pass --read-only. */
  readOnly?: boolean;
  /** Endpoint and credentials (AWS_*), passed in the child's environment only. */
  env?: NodeJS.ProcessEnv;
  /** More flags for `granary mount` (the cache's, for one). */
  args?: string[];
}

/** A running `granary mount` child process. */
export interface GranaryMount {
  /** The mountpoint as mountinfo shows it (real path). */
  readonly mountpoint: string;
  readonly child: ChildProcess;
  /** The mount log (JSON lines on stderr) so far. */
  log(): string;
  /** The last `lines` lines of the log. */
  logTail(lines?: number): string;
  /** SIGTERM and wait; then `umount -l` if the mountpoint is still a granary mount. Safe to call twice. */
  stop(): Promise<void>;
}

/** The AWS_* environment that points a mount at the test S3 server. */
export function s3MountEnv(server: TestS3): NodeJS.ProcessEnv {
  return {
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    AWS_ENDPOINT_URL: server.endpoint,
    AWS_REGION: server.region,
  };
}

/** The granary mount at `mountpoint`, if mountinfo lists one. */
export function granaryMountAt(mountpoint: string): MountEntry | undefined {
  const entry = findMount(readMountInfo(), mountpoint);
  return entry?.fsType === GRANARY_FS_TYPE ? entry : undefined;
}

function lazyUnmount(mountpoint: string): Promise<void> {
  return new Promise((resolve) => execFile('umount', ['-l', mountpoint], () => resolve()));
}

const live = new Set<GranaryMount>();

/** Spawns the built CLI and resolves once the mountpoint is a fuse.granary mount; rejects (with the log) if the process exits or times out first. */
export async function mountGranary(options: MountOptions): Promise<GranaryMount> {
  const mountpoint = fs.realpathSync(options.mountpoint);
  const args = [builtCli(), 'mount', options.source, mountpoint, ...(options.readOnly ? ['--read-only'] : []), ...(options.args ?? [])];
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-MAX_LOG_CHARS);
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let stopping: Promise<void> | undefined;
  const mount: GranaryMount = {
    mountpoint,
    child,
    log: () => log,
    logTail: (lines = LOG_TAIL_LINES) => log.trimEnd().split('\n').slice(-lines).join('\n'),
    stop: () => {
      stopping ??= (async () => {
        await stopProcess(child, MOUNT_STOP_GRACE_MS);
        for (let attempt = 0; attempt < 5 && granaryMountAt(mountpoint); attempt++) await lazyUnmount(mountpoint);
        live.delete(mount);
      })();
      return stopping;
    },
  };
  live.add(mount);

  const deadline = Date.now() + MOUNT_READY_TIMEOUT_MS;
  while (!granaryMountAt(mountpoint)) {
    const gone = child.exitCode !== null || child.signalCode !== null;
    if (gone || Date.now() > deadline) {
      await mount.stop();
      const why = gone ? `exited (${child.exitCode ?? child.signalCode})` : `was not mounted within ${MOUNT_READY_TIMEOUT_MS} ms`;
      throw new Error(`granary mount ${options.source} ${mountpoint} ${why}; log tail:\n${mount.logTail()}`);
    }
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 50))]);
  }
  return mount;
}

/** Stops every mount this test file started and has not stopped yet (for afterAll, even after failures). */
export async function stopAllMounts(): Promise<void> {
  await Promise.all([...live].map((mount) => mount.stop()));
}

/**
 * Wraps a test body so that a failure carries the tail of the mount's log in its message (the mount
 * process's own view of what went wrong is usually the fastest way to the cause).
 */
export function withMountLog(mount: () => GranaryMount | undefined, body: () => Promise<void> | void): () => Promise<void> {
  return async () => {
    try {
      await body();
    } catch (error) {
      const current = mount();
      if (current && error instanceof Error) {
        error.message += `\n\n--- granary mount log, last ${LOG_TAIL_LINES} lines (${current.mountpoint}) ---\n${current.logTail()}`;
      }
      throw error;
    }
  };
}
