// The FUSE handle table of open regular files, and the choice at open(2) between a read handle and a
// write handle. READ, WRITE, FLUSH, FSYNC and RELEASE go to the OpenFile of their handle.
import { constants as fsConstants } from 'node:fs';
import type { Logger } from '../log/logger';
import type { AttrCache, PathStat, TimesCache } from './attr-cache';
import { Errno, toFuseError } from './errno';
import type { FileOpener } from './file-opener';
import { FuseError, type OpenReply } from './fuse/operations';
import { OpenFlag } from './fuse/protocol';
import type { Inode } from './inodes';
import type { Namespace } from './namespace';
import type { OpenFile } from './open-file';
import type { WritingFiles } from './writing-files';

/** The access-mode bits of open(2) flags (O_ACCMODE on Linux; node:fs does not export it). */
const O_ACCMODE = 0o3;

/** Whether open(2) `flags` only read (O_RDONLY without O_TRUNC). */
export function isReadOnlyOpen(flags: number): boolean {
  return (flags & O_ACCMODE) === fsConstants.O_RDONLY && !(flags & fsConstants.O_TRUNC);
}

/** An open regular file: the node it was opened on and what reads and writes it. */
export interface FileHandle {
  node: Inode;
  file: OpenFile;
  /** Registered in WritingFiles under the node's path (writers only). */
  writing: boolean;
  /** The stat at open (readers: the version being read). */
  stat: PathStat;
}

/** A handle as a successor process restores it: enough to serve it again (a read handle), or to fail it cleanly. */
export type HandleRecord =
  | { kind: 'read'; nodeId: number; key: string; etag: string; size: number; mtimeMs: number }
  | { kind: 'write'; nodeId: number }
  | { kind: 'directory'; nodeId: number };

/** Hears every handle the kernel is given and gives back (SessionJournal keeps them for a successor). */
export interface HandleObserver {
  opened(handle: number, record: HandleRecord): void;
  released(handle: number): void;
}

/** What HandleTable shares with the rest of the filesystem. */
export interface HandleTableOptions {
  opener: FileOpener;
  namespace: Namespace;
  writing: WritingFiles;
  attrs: AttrCache;
  times: TimesCache;
  logger: Logger;
  clock: () => number;
  /** Told of every handle opened and released (none by default). */
  observer?: HandleObserver;
}

/** The handle table of one mount's open regular files. */
export class HandleTable {
  private readonly open = new Map<number, FileHandle>();
  /** Inode id → ETag read by the last open, to keep the page cache when the object did not change. */
  private readonly lastOpenedEtag = new Map<number, string>();
  /** Shared with directory handles by the Filesystem, so every handle number is unique. */
  private nextHandle = 1;

  constructor(private readonly options: HandleTableOptions) {}

  /** A fresh handle number (files and directories share the sequence). */
  allocateHandle(): number {
    return this.nextHandle++;
  }

  /** The open file behind `handle`, if any. */
  get(handle: number): FileHandle | undefined {
    return this.open.get(handle);
  }

  /** The open file behind `handle`; EBADF when it is unknown. */
  require(handle: number): FileHandle {
    const open = this.open.get(handle);
    if (!open) throw new FuseError(Errno.EBADF);
    return open;
  }

  /** Opens `node` (a file) with open(2) `flags`: a read handle for O_RDONLY, a write handle otherwise. */
  async openNode(node: Inode, flags: number): Promise<OpenReply> {
    const { namespace, writing, attrs, times, opener } = this.options;
    const path = node.path;
    try {
      // Close-to-open: what a released writer publishes lands first, and a file another descriptor of
      // this mount is writing is made durable first, so this open sees (and a writer starts from) the
      // bytes written so far, as one object version.
      await writing.releasesOf(path);
      const writers = writing.filesOf(path);
      if (writers.length > 0) {
        await Promise.all(writers.map((writer) => writer.fsync()));
        attrs.delete(path);
      }
      const stat = writers.length > 0 ? await namespace.storedStat(path) : await namespace.stat(path);
      if (stat.kind !== 'file') throw new FuseError(Errno.ENOENT);
      const file = { key: namespace.keyOf(path), path, existing: stat };
      if (!isReadOnlyOpen(flags)) {
        const truncate = (flags & fsConstants.O_TRUNC) !== 0;
        if (truncate) times.deleteTree(path);
        this.lastOpenedEtag.delete(node.id);
        return { handle: this.addWriter(node, opener.openWrite(file, { truncate, append: (flags & fsConstants.O_APPEND) !== 0 })), flags: 0 };
      }
      const handle = this.allocateHandle();
      this.open.set(handle, { node, file: opener.openRead(file), writing: false, stat });
      if (stat.etag !== undefined) this.options.observer?.opened(handle, { kind: 'read', nodeId: node.id, key: file.key, etag: stat.etag, size: stat.size, mtimeMs: stat.mtimeMs });
      // Keep the kernel's cached pages only when the object is the version they came from.
      const keepCache = stat.etag !== undefined && this.lastOpenedEtag.get(node.id) === stat.etag;
      if (stat.etag !== undefined) this.lastOpenedEtag.set(node.id, stat.etag);
      // NOFLUSH: a read handle has nothing to flush, so the kernel skips the FLUSH it would send at every close(2)
      // (one request of the five a small file's open-read-close costs).
      return { handle, flags: OpenFlag.NOFLUSH | (keepCache ? OpenFlag.KEEP_CACHE : 0) };
    } catch (error) {
      throw toFuseError(error, 'open', path, this.options.logger);
    }
  }

  /** Opens a write handle on the new file `node` (CREATE); returns the handle. */
  create(node: Inode, flags: number): number {
    const { namespace, opener, times, attrs } = this.options;
    const file = opener.openWrite({ key: namespace.keyOf(node.path), path: node.path }, { truncate: true, append: (flags & fsConstants.O_APPEND) !== 0 });
    times.deleteTree(node.path);
    attrs.delete(node.path);
    return this.addWriter(node, file);
  }

  /** truncate(2)/ftruncate(2) of `node`: through a write handle when one is open on it, else on the object. */
  async truncate(node: Inode, size: number, handle: number | undefined): Promise<void> {
    const { namespace, writing, opener, attrs } = this.options;
    const open = handle !== undefined ? this.open.get(handle) : undefined;
    const writer = open?.writing ? open.file : writing.filesOf(node.path)[0];
    // Truncating the object itself: after what a released writer publishes, or that publish would undo it.
    if (!writer) await writing.releasesOf(node.path);
    const existing = writer ? undefined : await namespace.stat(node.path);
    await opener.truncate({ key: namespace.keyOf(node.path), path: node.path, ...(existing && { existing }) }, size, writer);
    attrs.delete(node.path);
  }

  /** Runs `operation` on the file of `handle`, mapping failures to errno; writers' cached attributes are dropped after. */
  async call<T>(handle: number, name: 'read' | 'write' | 'flush' | 'fsync', operation: (file: OpenFile) => Promise<T>): Promise<T> {
    const open = this.require(handle);
    if (name === 'write' && !open.writing) throw new FuseError(Errno.EBADF);
    try {
      return await operation(open.file);
    } catch (error) {
      throw toFuseError(error, name, open.node.path, this.options.logger);
    } finally {
      // The object's size and ETag change when a writer flushes.
      if (open.writing && name !== 'read') this.options.attrs.delete(open.node.path);
    }
  }

  /**
   * The last descriptor of `handle` closed: frees it; a failure is only logged (nobody is left to tell). A writer
   * stays in WritingFiles, visible with its size, until what its release publishes is in the store; it is marked
   * before the first await, so a RENAME, UNLINK or OPEN the kernel sends after this RELEASE waits for the publish.
   */
  async release(handle: number): Promise<void> {
    const open = this.open.get(handle);
    if (!open) return;
    this.open.delete(handle);
    this.options.observer?.released(handle);
    const released = open.file.release().catch((error: unknown) => {
      this.options.logger.warn({ op: 'release', path: open.node.path, err: error }, 'releasing an open file failed');
    });
    if (!open.writing) return released;
    // The object's size and ETag changed: the next stat asks the store.
    await this.options.writing.release(open.file, released, (path) => this.options.attrs.delete(path));
  }

  /**
   * An open the kernel never got (answered already at an interrupt or a deadline): the handle goes as if never
   * opened, publishing nothing (a late O_TRUNC open must not empty the file when released).
   */
  discard(handle: number): void {
    const open = this.open.get(handle);
    if (!open) return;
    open.file.abandon?.(new Error(`open of ${open.node.path} answered after its caller stopped waiting`));
    void this.release(handle);
  }

  /** The kernel forgot `nodeId`: its page-cache bookkeeping goes too. */
  forget(nodeId: number): void {
    this.lastOpenedEtag.delete(nodeId);
  }

  /** Drops every handle (the kernel connection ended). */
  clear(): void {
    this.open.clear();
  }

  private addWriter(node: Inode, file: OpenFile): number {
    const handle = this.allocateHandle();
    const openedAtMs = this.options.clock();
    this.options.writing.add(node.path, file, openedAtMs);
    this.open.set(handle, { node, file, writing: true, stat: { kind: 'file', size: file.size, mtimeMs: openedAtMs } });
    this.options.observer?.opened(handle, { kind: 'write', nodeId: node.id });
    return handle;
  }

  /**
   * Takes over file handle `handle` an earlier process of this session gave the kernel: a read handle reads its object
   * version again; a write handle lost what its process had not made durable, so every call on it but release fails
   * with EIO (the writer learns it, and the object stays the old or the new one). Later handles are numbered past it.
   */
  restore(handle: number, node: Inode, record: Exclude<HandleRecord, { kind: 'directory' }>): void {
    this.nextHandle = Math.max(this.nextHandle, handle + 1);
    if (record.kind === 'write') {
      this.open.set(handle, { node, file: new LostWriteHandle(node.path), writing: true, stat: { kind: 'file', size: 0, mtimeMs: this.options.clock() } });
      return;
    }
    const stat: PathStat = { kind: 'file', size: record.size, mtimeMs: record.mtimeMs, etag: record.etag };
    this.open.set(handle, { node, file: this.options.opener.openRead({ key: record.key, path: node.path, existing: stat }), writing: false, stat });
  }

  /** Numbers later handles past `handle` (a directory handle restored by the filesystem). */
  reserve(handle: number): void {
    this.nextHandle = Math.max(this.nextHandle, handle + 1);
  }
}

/**
 * A write handle whose process died before the store had what it was given: the writer must learn that its data did
 * not all land, so every call but release fails with EIO, and release publishes nothing.
 */
class LostWriteHandle implements OpenFile {
  readonly size = 0;

  constructor(private readonly path: string) {}

  private lost(operation: string): Promise<never> {
    return Promise.reject(new FuseError(Errno.EIO, `${operation} ${this.path}: the process serving this file died; what was written since the last successful close or fsync was not stored`));
  }

  read(): Promise<Buffer> {
    return this.lost('read');
  }

  write(): Promise<number> {
    return this.lost('write');
  }

  flush(): Promise<void> {
    return this.lost('flush');
  }

  fsync(): Promise<void> {
    return this.lost('fsync');
  }

  async release(): Promise<void> {}
}
