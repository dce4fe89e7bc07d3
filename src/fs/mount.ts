// Mounting the filesystem: check the mountpoint, build the read and write paths over the store it is handed,
// mount over FUSE, and at the end drain what the writes still owe the store. Opening the store and the cluster
// cache, and the process around a mount, are the composition root's (src/roles/mount.ts).
import * as fs from 'node:fs';
import type { BlockFetcher } from '../blocks/block-fetcher';
import type { MountConfig } from '../config/mount';
import type { Logger } from '../log/logger';
import { S3Store } from '../objectstore/s3';
import type { ObjectStore } from '../objectstore/store';
import { Filesystem } from './filesystem';
import { ObjectFileOpener } from './file-opener';
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

/** What the filesystem is handed: the store and prefix it serves, where its blocks come from, and the outside world. */
export interface FilesystemMountOptions {
  /** The mountpoint as checkMountpoint() returned it (its real path). */
  mountpoint: string;
  /** The fsname mountinfo shows. */
  fsname: string;
  /** The store the volume is; its owner (the caller) closes it after the mount has ended. */
  store: ObjectStore;
  /** The key prefix of the volume in the store: empty, or ending with `/`. */
  prefix: string;
  /**
   * Where blocks come from, given the object store's fetcher the read path makes from config.read; default that
   * fetcher itself. The cluster cache passes one that asks each block's owner and falls back to the origin.
   */
  blockFetcher?: (origin: BlockFetcher) => BlockFetcher;
  logger: Logger;
  /** Default: the real /dev/fuse and mount(2). */
  fuseSystem?: FuseSystem;
}

/** A live mount. */
export interface MountedVolume {
  readonly mountpoint: string;
  /** Resolves when the kernel connection has ended (our unmount or someone else's) and the mount is released. */
  readonly closed: Promise<void>;
  /** Unmounts (umount, then umount -l if busy) and releases what the mount holds. */
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

/**
 * Mounts the volume `store`/`prefix` at `options.mountpoint` as `config` says. Steps: 1. build the read path (over
 * `options.blockFetcher`) and the write path; 2. abort the uploads a killed predecessor recorded; 3. mount and wait
 * for FUSE_INIT. On failure, what was set up here is released; the store is the caller's to close.
 */
export async function mountFilesystem(config: MountConfig, options: FilesystemMountOptions): Promise<MountedVolume> {
  const { mountpoint, store, prefix, logger } = options;
  const readPath = new ReadPath({ store, config: config.read, logger, ...(options.blockFetcher && { fetcher: options.blockFetcher }) });
  // The volume's state directory records the multipart uploads in flight, so this mount aborts those a killed predecessor left.
  const record = config.stateDir !== undefined ? new UploadRecord(config.stateDir, logger) : undefined;
  const writePath = createWritePath(config.write, { ...(record && { record }), bucket: store instanceof S3Store ? store.bucket : store.location, logger });
  await writePath.uploads.abortPrevious(store);
  const opener = new ObjectFileOpener({
    store,
    readPath,
    writePath,
    logger,
  });
  const filesystem = new Filesystem({
    store,
    opener,
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
      fsname: options.fsname,
      subtype: config.subtype,
      readOnly: config.readOnly,
      defaultPermissions: true,
      deviceReaders: config.fuse.deviceReaders,
      maxBackground: config.fuse.maxBackground,
      maxReadahead: config.fuse.maxReadahead,
      unmountTimeoutMs: config.fuse.unmountTimeoutMs,
      deadlines: config.deadlines,
      // O_TRUNC arrives with OPEN, so the write handle starts empty instead of a separate SETATTR(size 0) uploading an empty object first.
      initFlags: DEFAULT_INIT_FLAGS | InitFlag.ATOMIC_O_TRUNC,
    },
    filesystem,
    logger,
    options.fuseSystem ?? linuxFuseSystem,
  );
  try {
    await session.mount();
  } catch (error) {
    filesystem.close();
    throw error;
  }
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
}
