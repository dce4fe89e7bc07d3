// The life of one `granary mount` process: check the mountpoint, open the source, mount, tell the
// parent it is live, serve until SIGTERM/SIGINT or an external umount, then unmount.
import * as fs from 'node:fs';
import type { MountConfig } from '../config/mount';
import type { Logger } from '../log/logger';
import { openSource as defaultOpenSource, type OpenedSource } from '../objectstore/source';
import { S3Store } from '../objectstore/s3';
import { cacheEnabled } from '../config/cache';
import { openMountCache, type MountCache } from '../cache/mount-cache';
import { Filesystem } from './filesystem';
import { ObjectFileHandles } from './handles';
import { raiseKernelReadahead } from './read/kernel-readahead';
import { ReadPath } from './read/read-path';
import { createWritePath } from './write';
import { UploadRecord } from './write/upload-record';
import { linuxFuseSystem, type FuseSystem } from './fuse/device';
import { findMount, readMountInfo, type MountEntry } from '../system/mountinfo';
import { InitFlag } from './fuse/protocol';
import { DEFAULT_INIT_FLAGS, FuseSession } from './fuse/session';

/** A mountpoint that cannot be used, with the step that fixes it in the message. */
export class MountpointError extends Error {
  override readonly name = 'MountpointError';
}

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
}

/** A live mount. */
export interface MountedVolume {
  readonly mountpoint: string;
  /** Resolves when the kernel connection has ended (our unmount or someone else's). */
  readonly closed: Promise<void>;
  /** Unmounts (umount, then umount -l if busy) and releases the store. */
  unmount(): Promise<void>;
}

/**
 * Checks that `mountpoint` exists, is a directory and is not already a mount; returns its real path
 * (as mountinfo shows it). A dead FUSE mount (its process was killed) is reported with the fix.
 */
export function checkMountpoint(mountpoint: string, mounts: () => MountEntry[] = readMountInfo): string {
  let stats: fs.Stats;
  try {
    stats = fs.statSync(mountpoint);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new MountpointError(`mountpoint ${mountpoint} does not exist: create the directory first (mkdir -p ${mountpoint})`);
    if (code === 'ENOTCONN') throw new MountpointError(`mountpoint ${mountpoint} is a dead FUSE mount (its process exited): run 'umount ${mountpoint}' and mount again`);
    throw new MountpointError(`mountpoint ${mountpoint} cannot be checked: ${(error as Error).message}`);
  }
  if (!stats.isDirectory()) throw new MountpointError(`mountpoint ${mountpoint} is not a directory: pass an empty directory`);
  const real = fs.realpathSync(mountpoint);
  const existing = findMount(mounts(), real);
  if (existing) {
    throw new MountpointError(`mountpoint ${real} is already a mount (${existing.fsType} from ${existing.source}): unmount it first ('umount ${real}') or pick another directory`);
  }
  return real;
}

/** The fsname shown in mountinfo: the S3 URL as given, or the local folder's absolute path. */
function fsnameOf(source: string, opened: OpenedSource): string {
  if (/^s3:\/\//i.test(source)) return source;
  return opened.store.location.replace(/^file:\/\//, '');
}

/**
 * Mounts `config.source` at `config.mountpoint`. Steps: 1. check the mountpoint; 2. open the source
 * and check the bucket (clear error on bad credentials before any mount exists); 3. mount and wait
 * for FUSE_INIT. On failure, whatever was set up is released.
 */
export async function mountVolume(config: MountConfig, dependencies: MountDependencies): Promise<MountedVolume> {
  const { logger } = dependencies;
  const mountpoint = checkMountpoint(config.mountpoint, dependencies.mounts);
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
    const readPath = new ReadPath({ store, config: config.read, logger, ...(cache && { source: cache.source }) });
    // The volume's state directory records the multipart uploads in flight, so this mount aborts those a killed predecessor left.
    const record = config.stateDir !== undefined ? new UploadRecord(config.stateDir, logger) : undefined;
    const writePath = createWritePath(config.write, { ...(record && { record }), bucket: store instanceof S3Store ? store.bucket : store.location, logger });
    await writePath.uploads.abortPrevious(store);
    const handles = new ObjectFileHandles({
      store,
      readPath,
      writePath,
      logger,
    });
    const filesystem = new Filesystem({
      store,
      handles,
      prefix,
      attrTimeoutMs: config.attrTimeoutMs,
      listPageSize: config.listPageSize,
      lookupListPages: config.lookupListPages,
      negativeLookupMs: config.negativeLookupMs,
      readOnly: config.readOnly,
      ownership: { uid: config.uid, gid: config.gid, fileMode: config.fileMode, dirMode: config.dirMode },
      renameConcurrency: config.renameConcurrency,
      logger,
    });
    const session = new FuseSession(
      {
        mountpoint,
        fsname: fsnameOf(config.source, opened),
        subtype: config.subtype,
        readOnly: config.readOnly,
        defaultPermissions: true,
        deviceReaders: config.fuse.deviceReaders,
        maxBackground: config.fuse.maxBackground,
        maxReadahead: config.fuse.maxReadahead,
        unmountTimeoutMs: config.fuse.unmountTimeoutMs,
        // O_TRUNC arrives with OPEN, so the write handle starts empty instead of a separate SETATTR(size 0) uploading an empty object first.
        initFlags: DEFAULT_INIT_FLAGS | InitFlag.ATOMIC_O_TRUNC,
      },
      filesystem,
      logger,
      dependencies.fuseSystem ?? linuxFuseSystem,
    );
    try {
      await session.mount();
    } catch (error) {
      filesystem.close();
      throw error;
    }
    const mountCache = cache;
    // The kernel caps FUSE readahead at the device's read_ahead_kb (128 KiB) whatever INIT said; raise it to what INIT allows.
    raiseKernelReadahead(mountpoint, config.fuse.maxReadahead, logger);
    logger.info({ mountpoint, store: store.location, prefix, readOnly: config.readOnly, stateDir: config.stateDir }, 'mounted');
    let released: Promise<void> | undefined;
    // Once the kernel connection is gone: what releases still publish and aborts still retried get a bounded time with the store.
    const release = () => {
      released ??= (async () => {
        const drainMs = config.write.unmountDrainTimeoutMs;
        try {
          await filesystem.settle(drainMs);
          await writePath.uploads.close(drainMs);
        } finally {
          filesystem.close();
          if (mountCache) logger.info({ cluster: mountCache.stats() }, 'cluster cache counters since the mount');
          mountCache?.close();
          store.close();
        }
      })();
      return released;
    };
    const closed = session.closed.then(release);
    return {
      mountpoint,
      closed,
      unmount: async () => {
        try {
          await session.unmount();
        } finally {
          await release();
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
export async function serveMount(config: MountConfig, dependencies: MountDependencies & { signals?: NodeJS.EventEmitter }): Promise<void> {
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
    await Promise.race([volume.closed, stopRequested]);
    if (received) await volume.unmount();
    else logger.info({ mountpoint: volume.mountpoint }, 'unmounted from outside; exiting');
  } finally {
    signals.off('SIGTERM', onTerm);
    signals.off('SIGINT', onInt);
  }
}
