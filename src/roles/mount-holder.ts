// The mount holder: what keeps a volume alive when the process serving it dies. It opens /dev/fuse and holds the
// descriptor for the mount's whole life, and runs the serving process (`granary mount`, the filesystem) with that
// descriptor inherited. The kernel ties a FUSE mount to its connection, not to a process: while the holder keeps the
// descriptor open, the mount stays, its callers wait, and a serving process started on the same descriptor takes the
// session over (the node ids and handles it journaled, the requests the kernel sends again). So a kill -9, an OOM kill
// or a crash of the serving process costs its callers a pause, not an error.
//
// The holder does nothing else: it never reads the device, so it cannot fail the way a server does.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import type { Logger } from '../log/logger';
import { findMount, readMountInfo } from '../system/mountinfo';

/** The descriptor number the device has in the serving process (after stdin, stdout, stderr). */
export const SERVER_FUSE_FD = 3;

/** The descriptor number of the first serving process's readiness pipe: it says `ready` there once its mount is live. */
const SERVER_READY_FD = 4;

/** Environment variable telling a serving process when its predecessor died (ms since the epoch), for its log. */
export const TAKEOVER_SINCE_ENV = 'GRANARY_TAKEOVER_SINCE';

/**
 * Deaths in a row, each within healthyAfterMs of its process's start, past which the holder stops restarting: a server
 * that cannot start, or a request that kills every server it is sent to again. A server that ran longer starts the
 * count again (as a crash-looping container's back-off does), so isolated deaths, however many, are always survived.
 */
const MAX_QUICK_DEATHS = 5;

/** A serving process that ran this long before it died was healthy (ms); the default of MountHolderOptions.healthyAfterMs. */
export const HEALTHY_AFTER_MS = 5000;

/** How long to wait before starting the next serving process after the n-th quick death in a row (ms). */
const restartDelayMs = (quickDeaths: number): number => (quickDeaths <= 1 ? 0 : Math.min(5000, 250 * 2 ** (quickDeaths - 2)));

/** What the holder runs and how. */
export interface MountHolderOptions {
  /** The program and arguments of the serving process, without the descriptor flags (added here). */
  command: string;
  args: readonly string[];
  /** The mountpoint (as the server mounts it, made absolute): to tell a crash of a live mount from a failed start. */
  mountpoint: string;
  /** An inherited fd to write `ready\n` to once the first serving process is live. */
  readyFd?: number;
  logger: Logger;
  /** Default: the real /dev/fuse. */
  openDevice?: () => number;
  /** Whether a FUSE mount stands at the mountpoint now (default: mountinfo lists one there). */
  isMounted?: (mountpoint: string) => boolean;
  /** Where signals come from (default: this process). */
  signals?: NodeJS.EventEmitter;
  /** Detaches the mount when nobody will serve it any more (default: umount -l). */
  detach?: (mountpoint: string) => void;
  /** A serving process that ran this long before dying was healthy (default HEALTHY_AFTER_MS). */
  healthyAfterMs?: number;
}

/**
 * Holds a mount: starts the serving process and, each time it dies while the mount is live, a new one that takes the
 * session over; forwards SIGTERM and SIGINT to it. Resolves with the exit code the `granary mount` process should have:
 * the server's when it ended on its own (unmounted, or failed before the mount was live), 1 when it crashed too often.
 */
export async function holdMount(options: MountHolderOptions): Promise<number> {
  const { logger } = options;
  const isMounted = options.isMounted ?? ((mountpoint: string) => findMount(readMountInfo(), mountpoint) !== undefined);
  const detach = options.detach ?? ((mountpoint: string) => void spawnSync('umount', ['-l', mountpoint], { stdio: 'ignore' }));
  const signals = options.signals ?? process;
  let fd: number;
  try {
    fd = (options.openDevice ?? (() => fs.openSync('/dev/fuse', 'r+')))();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new Error('granary mount must run as root (FUSE mounts need CAP_SYS_ADMIN)', { cause: error });
    if (code === 'ENOENT') throw new Error('/dev/fuse does not exist: load the fuse module (modprobe fuse)', { cause: error });
    throw error;
  }
  let child: ChildProcess | undefined;
  let stopping: NodeJS.Signals | undefined;
  const forward = (signal: NodeJS.Signals) => {
    stopping ??= signal;
    if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const onTerm = () => forward('SIGTERM');
  const onInt = () => forward('SIGINT');
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  const healthyAfterMs = options.healthyAfterMs ?? HEALTHY_AFTER_MS;
  let quickDeaths = 0;
  let takeoverSince: number | undefined;
  // Whether the first serving process's mount went live: before, a death is a failed start (another mount already at
  // the mountpoint, bad credentials...), never a session to take over, whatever stands at the mountpoint.
  let live = false;
  try {
    for (;;) {
      const first = takeoverSince === undefined;
      child = startServer(options, first, takeoverSince);
      if (first) {
        watchReadiness(child.stdio[SERVER_READY_FD] as Readable | undefined, () => {
          live = true;
          if (options.readyFd !== undefined) signalReady(options.readyFd, logger);
        });
      }
      const pid = child.pid;
      const startedAt = Date.now();
      // The first start is routine (debug); a takeover is news.
      if (first) logger.debug({ pid }, 'serving process started');
      else logger.info({ pid, takeover: true }, 'serving process started: taking the session over');
      const { code, signal } = await exited(child);
      const diedAt = Date.now();
      if (stopping || (code === 0 && !signal)) {
        // Asked to stop, and the server died before it unmounted (the signal came while it was starting): nobody else will.
        if (stopping && isMounted(options.mountpoint)) detach(options.mountpoint);
        return code ?? 1;
      }
      if (!live || !isMounted(options.mountpoint)) {
        // Died before the mount was live (bad credentials, a busy mountpoint...; its own message said why), or after
        // it was unmounted: nothing to take over.
        return code ?? 1;
      }
      quickDeaths = diedAt - startedAt < healthyAfterMs ? quickDeaths + 1 : 0;
      if (quickDeaths > MAX_QUICK_DEATHS) {
        logger.error({ pid, code, signal, deathsInARow: quickDeaths, healthyAfterMs, mountpoint: options.mountpoint },
          'the serving process keeps dying: giving up the mount (detached; open files get ENOTCONN); see the log lines above for why it died');
        detach(options.mountpoint);
        return 1;
      }
      logger.warn({ pid, code, signal, mountpoint: options.mountpoint }, 'serving process died: starting a new one on the same FUSE connection');
      takeoverSince = diedAt;
      const delay = restartDelayMs(quickDeaths);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      if (stopping) {
        // Asked to stop while no process served the mount: nobody else will unmount it.
        detach(options.mountpoint);
        return 0;
      }
    }
  } finally {
    signals.off('SIGTERM', onTerm);
    signals.off('SIGINT', onInt);
    // Closing the last descriptor ends the connection: a mount left behind (given up) then answers ENOTCONN.
    fs.closeSync(fd);
  }

  function startServer(holder: MountHolderOptions, first: boolean, since: number | undefined): ChildProcess {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.GRANARY_READY_FD;
    if (first) env.GRANARY_READY_FD = String(SERVER_READY_FD);
    if (since !== undefined) env[TAKEOVER_SINCE_ENV] = String(since);
    else delete env[TAKEOVER_SINCE_ENV];
    const args = [...holder.args, '--fuse-fd', String(SERVER_FUSE_FD), ...(first ? [] : ['--takeover'])];
    // stdin is a pipe the server watches: when the holder dies (kill -9 of `granary mount`), the server ends too, and
    // with the last descriptor the connection, as a killed mount always did.
    return spawn(holder.command, args, { env, stdio: ['pipe', 'inherit', 'inherit', fd, ...(first ? ['pipe' as const] : [])] });
  }
}

/** Resolves when `child` has exited, with how. */
function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** Calls `ready` once the serving process wrote `ready\n` to its pipe. */
function watchReadiness(pipe: Readable | undefined, ready: () => void): void {
  if (!pipe) return;
  let seen = '';
  pipe.on('data', (chunk: Buffer) => {
    seen += chunk.toString();
    if (!seen.includes('ready\n')) return;
    pipe.destroy();
    ready();
  });
  pipe.on('error', () => undefined);
}

/** Writes `ready\n` to the inherited `readyFd` (the holder's own parent waits on it) and closes it. */
function signalReady(readyFd: number, logger: Logger): void {
  try {
    fs.writeSync(readyFd, 'ready\n');
    fs.closeSync(readyFd);
  } catch (error) {
    logger.warn({ err: error, fd: readyFd }, 'could not signal readiness on the ready fd');
  }
}
