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
import { DEFAULT_INIT_FLAGS, FuseSession, type NegotiatedProtocol } from './fuse/session';
import { SessionJournal } from './takeover/session-journal';

/** The journal a dead serving process left in `stateDir`; throws when there is none to take over. */
function resumeJournal(stateDir: string): SessionJournal {
  const journal = SessionJournal.resume(stateDir);
  if (!journal) throw new Error(`no FUSE session to take over in ${stateDir}: the process that served it kept no journal there`);
  return journal;
}

/** How often the requests in flight are journaled where the kernel cannot send them again after a crash. */
const RECORD_REQUESTS_EVERY_MS = 1000;

/**
 * Journals the session's requests in flight every RECORD_REQUESTS_EVERY_MS when they changed, so that a successor on a
 * kernel without FUSE_NOTIFY_RESEND (before Linux 6.9) can fail those the dead process left with EIO rather than leave
 * their callers waiting until unmount. Not needed (nor run) where the kernel sends them again.
 */
function recordRequests(session: FuseSession, journal: SessionJournal): NodeJS.Timeout {
  let last = '';
  const timer = setInterval(() => {
    const requests = session.requestsInFlight();
    const key = `${requests.highest}:${requests.inFlight.join(',')}`;
    if (key === last) return;
    last = key;
    journal.requests(requests);
  }, RECORD_REQUESTS_EVERY_MS);
  timer.unref();
  return timer;
}

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
  /**
   * The /dev/fuse descriptor the mount holder keeps open and this process inherited: the session is kept in the state
   * directory's journal, so that a process started after this one dies can take it over. Absent: /dev/fuse is opened
   * here and nothing is kept (the connection ends with this process).
   */
  fuseFd?: number;
  /**
   * Take over the live session of `fuseFd` (its serving process died) instead of mounting: the journal's node ids and
   * handles are restored and the kernel asked to send again what the dead process had read. `since` is when it died
   * (for the log: how long the connection was unserved).
   */
  takeover?: { since: number };
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
  const { store, prefix, logger } = options;
  // The journal that lets a successor take this session over: only with a holder (an inherited descriptor) to keep the
  // connection open, and a state directory to keep it in.
  const journal = options.fuseFd === undefined || config.stateDir === undefined ? undefined
    : options.takeover ? resumeJournal(config.stateDir) : SessionJournal.create(config.stateDir);
  const taken = options.takeover ? journal?.current.session : undefined;
  // A successor serves the mount where its first process made it (that process resolved the path).
  const mountpoint = taken?.mountpoint ?? options.mountpoint;
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
    ...(journal && { session: journal }),
    prefix,
    attrTimeoutMs: config.attrTimeoutMs,
    listPageSize: config.listPageSize,
    lookupListPages: config.lookupListPages,
    negativeLookupMs: config.negativeLookupMs,
    prefetchListings: config.prefetchListings,
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
      ...(options.fuseFd !== undefined && { deviceFd: options.fuseFd }),
      ...(journal && {
        agreed: (protocol: NegotiatedProtocol) => journal.session({ protocol, mountpoint }),
        // The records the reply may depend on reach the file first, all of them in one write. A state directory that
        // cannot be written (full, read-only) costs the takeover, never a reply: the journal is given up, loudly.
        beforeReply: () => {
          try {
            journal.beforeReply();
          } catch (error) {
            logger.error({ err: error, stateDir: config.stateDir }, `the session journal cannot be written in ${config.stateDir}: this mount serves on, but a crash of its serving process will now end it (no takeover); free or fix that directory and remount to get takeover back`);
            journal.abandon();
          }
        },
      }),
    },
    filesystem,
    logger,
    options.fuseSystem ?? linuxFuseSystem,
  );
  try {
    if (options.takeover && journal && taken) {
      const { nodes, handles, requests } = journal.current;
      filesystem.restore({ nodes: nodes.values(), handles: handles.entries() });
      const { resent, failed } = await session.adopt(taken.protocol, requests);
      logger.info({
        mountpoint, nodes: nodes.size, handles: handles.size, resent, failed, unservedMs: Date.now() - options.takeover.since,
      }, resent
        ? 'took over the FUSE session of a process that died: the kernel sends again what it had read but not answered'
        : 'took over the FUSE session of a process that died; this kernel cannot send again what it had read (Linux 6.9 can): those calls failed with EIO');
    } else {
      await session.mount();
      // The kernel caps FUSE readahead at the device's read_ahead_kb (128 KiB) whatever INIT said; raise it to what INIT allows.
      raiseKernelReadahead(mountpoint, config.fuse.maxReadahead, logger);
      logger.info({ mountpoint, store: store.location, prefix, readOnly: config.readOnly, stateDir: config.stateDir, takeoverReady: journal !== undefined }, 'mounted');
    }
  } catch (error) {
    filesystem.close();
    // A session that never started leaves nothing to take over; a takeover that failed leaves it to the next try.
    if (options.takeover) journal?.close();
    else journal?.remove();
    throw error;
  }
  const recorder = journal && !session.negotiated?.kernelCanResend ? recordRequests(session, journal) : undefined;
  let released: Promise<void> | undefined;
  // Once the kernel connection is gone: what releases still publish and aborts still retried get a bounded time with the store.
  const release = () => {
    released ??= (async () => {
      const drainMs = config.write.unmountDrainTimeoutMs;
      if (recorder) clearInterval(recorder);
      try {
        await filesystem.settle(drainMs);
        await writePath.uploads.close(drainMs);
      } finally {
        filesystem.close();
        // The connection has ended: there is no session left to take over.
        journal?.remove();
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
