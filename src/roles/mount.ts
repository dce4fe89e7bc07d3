// The `granary mount` role, composed: the object store, the cluster cache's block fetcher when the config names a
// cache, and the filesystem, which is handed that block fetcher; then the life of the process around it (check the
// mountpoint, mount, tell the parent it is live, serve until SIGTERM/SIGINT or an external umount, unmount).
import * as fs from 'node:fs';
import { openMountCache, type MountCache } from '../cache/mount-cache';
import { cacheEnabled } from '../config/cache';
import type { MountConfig } from '../config/mount';
import { checkMountpoint, mountFilesystem, type MountedVolume } from '../fs/mount';
import type { FuseSystem } from '../fs/fuse/device';
import type { Logger } from '../log/logger';
import { S3Store } from '../objectstore/s3';
import { openSource as defaultOpenSource, type OpenedSource } from '../objectstore/source';
import type { MountEntry } from '../system/mountinfo';

/** The outside world a mount touches, injectable for tests. */
export interface MountDependencies {
  logger: Logger;
  /** Opens a source string (default: objectstore/source openSource, AWS_* variables from `env`). */
  openSource?: (source: string, env: NodeJS.ProcessEnv) => OpenedSource;
  /** Environment that holds the store's endpoint and credentials (default process.env). */
  env?: NodeJS.ProcessEnv;
  fuseSystem?: FuseSystem;
  /** Current mounts (default: /proc/self/mountinfo). */
  mounts?: () => MountEntry[];
  /** Connects to the cluster cache when the config names one (default: cache/mount-cache openMountCache). */
  openCache?: typeof openMountCache;
  /** The /dev/fuse descriptor inherited from the mount holder (see FilesystemMountOptions.fuseFd). */
  fuseFd?: number;
  /** Take over the session of `fuseFd`, whose serving process died at `since` (see FilesystemMountOptions.takeover). */
  takeover?: { since: number };
}

/** Logs a warning when `mountpoint` holds entries: the mount hides them (they are back after unmount). */
function warnIfNotEmpty(mountpoint: string, logger: Logger): void {
  let hidden: string[];
  try {
    hidden = fs.readdirSync(mountpoint);
  } catch {
    return;
  }
  if (hidden.length === 0) return;
  logger.warn({ mountpoint, hidden: hidden.length, first: hidden.slice(0, 3) },
    `the mountpoint is not empty: its ${hidden.length} entries are hidden while granary is mounted over them (they are back after unmount); mount on an empty directory`);
}

/** The fsname shown in mountinfo: the S3 URL as given, or the local folder's absolute path. */
function fsnameOf(source: string, opened: OpenedSource): string {
  if (/^s3:\/\//i.test(source)) return source;
  return opened.store.location.replace(/^file:\/\//, '');
}

/**
 * Mounts `config.source` at `config.mountpoint`. Steps: 1. check the mountpoint; 2. open the source and check the
 * bucket (clear error on bad credentials before any mount exists); 3. connect to the cluster cache, when the config
 * names one; 4. mount the filesystem over the cache's block fetcher (or the origin's). Once the mount has ended the
 * cache's counters are logged and the cache and the store closed; on failure, whatever was set up is released.
 */
export async function mountVolume(config: MountConfig, dependencies: MountDependencies): Promise<MountedVolume> {
  const { logger } = dependencies;
  // A session taken over is already mounted there, and nobody serves it until this process does: the mountpoint is
  // the holder's resolved path, and touching it now would wait for this very process.
  const mountpoint = dependencies.takeover ? config.mountpoint : checkMountpoint(config.mountpoint, dependencies.mounts);
  if (!dependencies.takeover) warnIfNotEmpty(mountpoint, logger);
  const opened = (dependencies.openSource ?? defaultOpenSource)(config.source, dependencies.env ?? process.env);
  const { store, prefix } = opened;
  let cache: MountCache | undefined;
  try {
    try {
      await store.checkBucket();
    } catch (error) {
      throw new Error(`cannot use ${store.location}: ${(error as Error).message}`, { cause: error });
    }
    if (cacheEnabled(config.cache)) {
      if (!(store instanceof S3Store)) throw new Error(`the cluster cache serves s3:// sources only; ${store.location} is read directly: drop the --cache-* flags`);
      cache = await (dependencies.openCache ?? openMountCache)(config.cache, { endpoint: store.endpoint, bucket: store.bucket }, logger);
    }
    const mountCache = cache;
    const volume = await mountFilesystem(config, {
      mountpoint,
      fsname: fsnameOf(config.source, opened),
      store,
      prefix,
      ...(mountCache && { blockFetcher: (origin) => mountCache.fetcher(origin) }),
      logger,
      ...(dependencies.fuseSystem && { fuseSystem: dependencies.fuseSystem }),
      ...(dependencies.fuseFd !== undefined && { fuseFd: dependencies.fuseFd }),
      ...(dependencies.takeover && { takeover: dependencies.takeover }),
    });
    let released = false;
    // After the filesystem has released the mount (its last writes drained): the cache and the store go last.
    const release = () => {
      if (released) return;
      released = true;
      if (mountCache) logger.info({ cluster: mountCache.stats() }, 'cluster cache counters since the mount');
      mountCache?.close();
      store.close();
    };
    return {
      mountpoint: volume.mountpoint,
      closed: volume.closed.finally(release),
      unmount: async () => {
        try {
          await volume.unmount();
        } finally {
          release();
        }
      },
    };
  } catch (error) {
    cache?.close();
    store.close();
    throw error;
  }
}

/** Writes `ready\n` to the inherited fd and closes it; a parent that went away is only logged. */
export function signalReady(fd: number, logger: Logger): void {
  try {
    fs.writeSync(fd, 'ready\n');
    fs.closeSync(fd);
  } catch (error) {
    logger.warn({ err: error, fd }, 'could not signal readiness on the ready fd');
  }
}

/**
 * Runs a mount process: mounts, signals readiness (config.readyFd), then serves until SIGTERM or
 * SIGINT (unmount, resolve) or until someone else unmounts it (resolve). The signal handlers go in
 * first, so a signal that arrives while mounting (or right after "ready") still unmounts cleanly.
 */
export async function serveMount(
  config: MountConfig,
  dependencies: MountDependencies & { signals?: NodeJS.EventEmitter; /** Hears that the mount is live (after the ready fd); for tests. */ onReady?: () => void },
): Promise<void> {
  const { logger } = dependencies;
  const signals = dependencies.signals ?? process;
  let received: string | undefined;
  let stop: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => (stop = resolve));
  const onSignal = (signal: string) => {
    if (received) return;
    received = signal;
    logger.info({ signal, mountpoint: config.mountpoint }, 'unmounting on signal');
    stop();
  };
  const onTerm = () => onSignal('SIGTERM');
  const onInt = () => onSignal('SIGINT');
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  try {
    const volume = await mountVolume(config, dependencies);
    if (config.readyFd !== undefined && !received) signalReady(config.readyFd, logger);
    dependencies.onReady?.();
    await Promise.race([volume.closed, stopRequested]);
    if (received) await volume.unmount();
    else logger.info({ mountpoint: volume.mountpoint }, 'unmounted from outside; exiting');
  } finally {
    signals.off('SIGTERM', onTerm);
    signals.off('SIGINT', onInt);
  }
}
