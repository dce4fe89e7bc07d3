// The granary filesystem: a volume prefix of an ObjectStore seen as files and directories.
// A file is the object at the same relative key; a directory is a common prefix or a `dir/` marker.
// This module maps FUSE requests (node ids, handles, flags) onto the namespace (namespace.ts) and
// the open files (handle-table.ts); it owns the read-only switch, name checks and errno mapping.
import { constants as fsConstants } from 'node:fs';
import type { Logger } from '../log/logger';
import { MAX_KEY_BYTES } from '../objectstore/validate';
import type { ObjectStore } from '../objectstore/store';
import { AttrCache, TimesCache, type PathStat } from './attr-cache';
import { Errno, toFuseError } from './errno';
import { ObjectFileOpener, type FileOpener } from './file-opener';
import {
  FuseError,
  type AttrReply,
  type Attributes,
  type CreateReply,
  type DirectoryEntry,
  type DirectoryEntryPlus,
  type EntryReply,
  type FuseOperations,
  type OpenReply,
  type RenameRequest,
  type RequestContext,
  type SetattrRequest,
  type StatfsReply,
} from './fuse/operations';
import { DirectoryCache } from './directory-cache';
import { direntPlusSize, direntSize, DirentType, UNKNOWN_INO } from './fuse/protocol';
import { childPath, InodeTable, parentPath, type Inode, type InodeObserver, type RestoredNode } from './inodes';
import { MAX_NAME_BYTES, Namespace } from './namespace';
import { HandleTable, isReadOnlyOpen, type HandleObserver, type HandleRecord } from './handle-table';
import { DEFAULT_READ_PATH_CONFIG } from '../config/read-path';
import { ReadPath } from './read/read-path';
import { createWritePath } from './write';
import { WritingFiles } from './writing-files';

/** st_blksize: the I/O size applications (cp, cat) are told to use; matches the largest FUSE request. */
export const PREFERRED_IO_SIZE = 1024 * 1024;

/** statfs numbers: an object store has no fixed size, so report a huge, mostly free one (df shows 1 PiB). */
export const STATFS_BLOCK_SIZE = 4096;
const STATFS_TOTAL_BLOCKS = 2 ** 50 / STATFS_BLOCK_SIZE;
const STATFS_TOTAL_FILES = 2 ** 40;

/** Who every file and directory belongs to, and their permission bits: S3 stores neither. */
export interface Ownership {
  uid: number;
  gid: number;
  /** Permission bits of files (without the type bits), e.g. 0o666. */
  fileMode: number;
  /** Permission bits of directories, e.g. 0o777. */
  dirMode: number;
}

/** The ownership a Filesystem gets unless told otherwise (see MountConfig for why). */
export const DEFAULT_OWNERSHIP: Ownership = { uid: 0, gid: 0, fileMode: 0o666, dirMode: 0o777 };

/** Objects copied at once by a directory rename unless told otherwise. */
export const DEFAULT_RENAME_CONCURRENCY = 16;

/** LIST pages a lookup may take to list its parent whole, unless told otherwise (see MountConfig). */
export const DEFAULT_LOOKUP_LIST_PAGES = 2;

/** Options of a Filesystem. */
export interface FilesystemOptions {
  store: ObjectStore;
  /** The volume's key prefix: '' (whole bucket) or ending with '/'. */
  prefix: string;
  /** How long attributes and name bindings are cached, here and in the kernel (ms). */
  attrTimeoutMs: number;
  /** Keys asked per LIST page (S3 returns at most 1000). */
  listPageSize: number;
  /** LIST pages a lookup may take to list its parent whole; 0 turns lookups from listings off (default DEFAULT_LOOKUP_LIST_PAGES). */
  lookupListPages?: number;
  /** How long a complete listing answers ENOENT for names it lacks without a request (default 0: always ask the store). */
  negativeLookupMs?: number;
  /** Subdirectories whose listings a directory read fetches ahead (default 0: none; the mount's config says 16). */
  prefetchListings?: number;
  logger: Logger;
  /** Refuse every change with EROFS (the mount is also `ro`; this holds even if the kernel let one through). */
  readOnly?: boolean;
  /** Owner and modes shown for everything (default DEFAULT_OWNERSHIP). */
  ownership?: Ownership;
  /** Objects copied at once by a directory rename (default DEFAULT_RENAME_CONCURRENCY). */
  renameConcurrency?: number;
  /** How open files read and write (default: the block reader and the write path with their default configuration). */
  opener?: FileOpener;
  /** The clock, for cache expiry and directory times. */
  clock?: () => number;
  /**
   * Told of every node id and handle the kernel is given or gives back, so that a successor process can serve them
   * after this one dies (SessionJournal); none by default.
   */
  session?: SessionObserver;
}

/** What a Filesystem tells of the node ids and handles it hands the kernel. */
export type SessionObserver = InodeObserver & HandleObserver;

/** What a successor process restores: the node ids and the open handles the kernel still holds. */
export interface RestoredSession {
  nodes: Iterable<RestoredNode>;
  handles: Iterable<[number, HandleRecord]>;
}

/** One entry of an open directory's listing; '.' and '..' have no path or stat (READDIRPLUS sends them without a lookup). */
interface ListedEntry {
  dirent: DirectoryEntry;
  path?: string;
  stat?: PathStat;
}

/** An open directory: its listing, taken at the first READDIR (again at a rewind to offset 0). */
interface DirectoryHandle {
  node: Inode;
  listing?: Promise<ListedEntry[]>;
}

/** The smallest encoded dirent (a one-byte name): bounds how many entries one READDIR reply can hold. */
const MIN_DIRENT_BYTES = direntSize(1);

/** The granary FUSE filesystem over one volume prefix of an ObjectStore. */
export class Filesystem implements FuseOperations {
  /** Node ids and paths known to the kernel. */
  readonly inodes: InodeTable;
  private readonly attrs: AttrCache;
  private readonly directoryListings: DirectoryCache;
  private readonly times = new TimesCache();
  private readonly writing = new WritingFiles();
  private readonly namespace: Namespace;
  private readonly opener: FileOpener;
  private readonly ownership: Ownership;
  private readonly handles: HandleTable;
  private readonly directories = new Map<number, DirectoryHandle>();
  private readonly clock: () => number;

  constructor(private readonly options: FilesystemOptions) {
    if (options.prefix !== '' && !options.prefix.endsWith('/')) throw new Error(`volume prefix "${options.prefix}" must be empty or end with "/"`);
    this.clock = options.clock ?? Date.now;
    this.inodes = new InodeTable(options.session);
    this.directoryListings = new DirectoryCache(options.attrTimeoutMs, this.clock);
    this.attrs = new AttrCache(options.attrTimeoutMs, this.clock, undefined, this.directoryListings);
    this.ownership = options.ownership ?? DEFAULT_OWNERSHIP;
    this.opener =
      options.opener ??
      new ObjectFileOpener({
        store: options.store,
        readPath: new ReadPath({ store: options.store, config: DEFAULT_READ_PATH_CONFIG, logger: options.logger }),
        writePath: createWritePath(),
        logger: options.logger,
      });
    this.namespace = new Namespace({
      store: options.store,
      prefix: options.prefix,
      listPageSize: options.listPageSize,
      lookupListPages: options.lookupListPages ?? DEFAULT_LOOKUP_LIST_PAGES,
      negativeLookupMs: options.negativeLookupMs ?? 0,
      prefetchListings: options.prefetchListings ?? 0,
      prefetchedListingMaxAgeMs: options.attrTimeoutMs,
      clock: this.clock,
      renameConcurrency: options.renameConcurrency ?? DEFAULT_RENAME_CONCURRENCY,
      attrs: this.attrs,
      directories: this.directoryListings,
      times: this.times,
      inodes: this.inodes,
      writing: this.writing,
      logger: options.logger,
      mountedAtMs: this.clock(),
    });
    this.handles = new HandleTable({
      opener: this.opener, namespace: this.namespace, writing: this.writing, attrs: this.attrs, times: this.times, logger: options.logger, clock: this.clock,
      ...(options.session && { observer: options.session }),
    });
  }

  /**
   * Takes over what an earlier process of this session handed the kernel (before any request is served): its node ids
   * and its open handles, which the kernel goes on using. A handle whose node is unknown is dropped (logged): every
   * call on it then fails with EBADF.
   */
  restore(session: RestoredSession): void {
    this.inodes.restore(session.nodes);
    let dropped = 0;
    for (const [handle, record] of session.handles) {
      const node = this.inodes.get(record.nodeId);
      if (!node) {
        dropped++;
        continue;
      }
      if (record.kind === 'directory') {
        this.handles.reserve(handle);
        this.directories.set(handle, { node });
      } else {
        this.handles.restore(handle, node, record);
      }
    }
    if (dropped > 0) this.options.logger.warn({ dropped }, 'open handles of unknown nodes were dropped at the takeover: calls on them fail with EBADF');
  }

  // -- names and attributes ---------------------------------------------------------------------

  async lookup(_context: RequestContext, parent: number, name: string): Promise<EntryReply> {
    const path = this.childOf(parent, name);
    const stat = await this.stat(path, 'lookup');
    return this.entryOf(this.inodes.remember(path, stat.kind), stat);
  }

  forget(nodeId: number, lookups: number): void {
    this.inodes.forget(nodeId, lookups);
    if (!this.inodes.get(nodeId)) this.handles.forget(nodeId);
  }

  async getattr(_context: RequestContext, nodeId: number, handle?: number): Promise<AttrReply> {
    const node = this.node(nodeId);
    // fstat(2) on an open file describes the version being read, or the size written so far.
    const open = handle !== undefined ? this.handles.get(handle) : undefined;
    const stat: PathStat = open ? { ...open.stat, size: open.file.size } : await this.stat(node.path, 'getattr');
    // The path now names something of another type: this node, as the kernel knows it, is gone.
    if (stat.kind !== node.kind) throw new FuseError(Errno.ENOENT);
    return { attributes: this.attributesOf(node, stat), timeoutMs: this.options.attrTimeoutMs };
  }

  /**
   * truncate/ftruncate go through the write path; utimes is kept in this mount's memory (S3 has no
   * settable mtime); chmod and chown are accepted and ignored, as rclone does: S3 stores neither,
   * every file shows the mount's configured owner and modes, and tools that preserve attributes (tar,
   * cp -p, rsync -a) must not fail on them. The kernel (default_permissions) lets only the owner or
   * root get here with a mode, owner or explicit time change.
   */
  async setattr(_context: RequestContext, nodeId: number, changes: SetattrRequest): Promise<AttrReply> {
    this.checkWritable();
    const node = this.node(nodeId);
    const path = node.path;
    try {
      if (changes.size !== undefined) {
        if (node.kind === 'directory') throw new FuseError(Errno.EISDIR);
        await this.handles.truncate(node, changes.size, changes.handle);
      }
      if (changes.atimeMs !== undefined || changes.mtimeMs !== undefined) {
        const stat = await this.namespace.stat(path);
        const now = this.clock();
        const previous = this.times.get(path, stat.etag);
        const resolve = (time: number | 'now' | undefined, fallback: number) => (time === 'now' ? now : (time ?? fallback));
        this.times.set(path, {
          atimeMs: resolve(changes.atimeMs, previous?.atimeMs ?? stat.mtimeMs),
          mtimeMs: resolve(changes.mtimeMs, previous?.mtimeMs ?? stat.mtimeMs),
          // Bound to this version, unless a writer is about to replace it.
          ...(this.writing.filesOf(path).length === 0 && stat.etag !== undefined && { etag: stat.etag }),
        });
      }
      if (changes.mode !== undefined || changes.uid !== undefined || changes.gid !== undefined) {
        this.options.logger.debug({ op: 'setattr', path, mode: changes.mode, uid: changes.uid, gid: changes.gid }, 'mode and owner changes are ignored (S3 stores neither)');
      }
    } catch (error) {
      throw toFuseError(error, 'setattr', path, this.options.logger);
    }
    return this.getattr(_context, nodeId, changes.handle);
  }

  async access(_context: RequestContext, nodeId: number, mask: number): Promise<void> {
    this.node(nodeId);
    if (mask & fsConstants.W_OK) this.checkWritable();
  }

  async statfs(): Promise<StatfsReply> {
    return {
      blocks: STATFS_TOTAL_BLOCKS,
      blocksFree: STATFS_TOTAL_BLOCKS,
      blocksAvailable: STATFS_TOTAL_BLOCKS,
      files: STATFS_TOTAL_FILES,
      filesFree: STATFS_TOTAL_FILES,
      blockSize: STATFS_BLOCK_SIZE,
      nameLength: MAX_NAME_BYTES,
      fragmentSize: STATFS_BLOCK_SIZE,
    };
  }

  // -- namespace changes ------------------------------------------------------------------------

  /**
   * Creates and opens a new file. It is visible at once to lookup and readdir in this mount (with
   * the size written so far); its object appears in the store at the first flush (close) or fsync.
   */
  async create(_context: RequestContext, parent: number, name: string, _mode: number, flags: number, _umask: number): Promise<CreateReply> {
    this.checkWritable();
    const path = this.childOf(parent, name);
    try {
      // The kernel sends CREATE after a negative lookup; O_EXCL must still not replace a file that appeared since.
      if (flags & fsConstants.O_EXCL && (await this.namespace.statIfExists(path))) throw new FuseError(Errno.EEXIST);
      const node = this.inodes.remember(path, 'file');
      const handle = this.handles.create(node, flags);
      const stat = this.writing.stat(path) as PathStat;
      return { entry: this.entryOf(node, stat), open: { handle, flags: 0 } };
    } catch (error) {
      throw toFuseError(error, 'create', path, this.options.logger);
    }
  }

  /** mknod(2) of a regular file puts an empty object at once (no handle will close it); other node types are EPERM. */
  async mknod(_context: RequestContext, parent: number, name: string, mode: number, _rdev: number, _umask: number): Promise<EntryReply> {
    this.checkWritable();
    const path = this.childOf(parent, name);
    if ((mode & fsConstants.S_IFMT) !== fsConstants.S_IFREG) throw new FuseError(Errno.EPERM, 'only regular files can be stored as objects');
    try {
      const stat = await this.namespace.makeEmptyFile(path);
      return this.entryOf(this.inodes.remember(path, 'file'), stat);
    } catch (error) {
      throw toFuseError(error, 'mknod', path, this.options.logger);
    }
  }

  /** Creates a directory as its `dir/` marker object, so it persists while empty. */
  async mkdir(_context: RequestContext, parent: number, name: string, _mode: number, _umask: number): Promise<EntryReply> {
    this.checkWritable();
    const path = this.childOf(parent, name);
    try {
      const stat = await this.namespace.makeDirectory(path);
      return this.entryOf(this.inodes.remember(path, 'directory'), stat);
    } catch (error) {
      throw toFuseError(error, 'mkdir', path, this.options.logger);
    }
  }

  async rmdir(_context: RequestContext, parent: number, name: string): Promise<void> {
    this.checkWritable();
    const path = this.childOf(parent, name);
    try {
      await this.namespace.removeDirectory(path);
    } catch (error) {
      throw toFuseError(error, 'rmdir', path, this.options.logger);
    }
  }

  async unlink(_context: RequestContext, parent: number, name: string): Promise<void> {
    this.checkWritable();
    const path = this.childOf(parent, name);
    try {
      // A release still publishing this file would bring it back after the delete.
      await this.writing.releasesOf(path);
      await this.namespace.removeFile(path);
    } catch (error) {
      throw toFuseError(error, 'unlink', path, this.options.logger);
    }
  }

  /**
   * rename(2): a file is copied server-side then deleted; a directory object by object (not atomic,
   * see Namespace.rename). Files still open for writing under the source are made durable first, so
   * `write tmp; fsync; rename tmp final` (or a rename before close) moves the data written so far; and
   * releases still publishing the source or the target finish first, so neither lands after the rename.
   */
  async rename(context: RequestContext, parent: number, request: RenameRequest): Promise<void> {
    this.checkWritable();
    const from = this.childOf(parent, request.name);
    const to = this.childOf(request.newParent, request.newName);
    try {
      await Promise.all([this.writing.releasesUnder(from), this.writing.releasesUnder(to)]);
      await Promise.all(this.writing.filesUnder(from).map((file) => file.fsync(context.progress)));
      await this.namespace.rename(from, to, request.flags, context.progress);
    } catch (error) {
      throw toFuseError(error, 'rename', `${from} -> ${to}`, this.options.logger);
    }
  }

  // -- files ------------------------------------------------------------------------------------

  async open(_context: RequestContext, nodeId: number, flags: number): Promise<OpenReply> {
    const node = this.node(nodeId);
    if (node.kind === 'directory') throw new FuseError(Errno.EISDIR);
    if (!isReadOnlyOpen(flags)) this.checkWritable();
    return this.handles.openNode(node, flags);
  }

  async read(_context: RequestContext, _nodeId: number, handle: number, offset: number, size: number): Promise<Buffer> {
    return this.handles.call(handle, 'read', (file) => file.read(offset, size));
  }

  /**
   * An interrupted write ends its own wait (see OpenFile.write). One past its deadline is answered EIO by the session
   * while it may still run: the file is abandoned then, so no byte the writer was told failed reaches the store.
   */
  async write(context: RequestContext, _nodeId: number, handle: number, offset: number, data: Buffer): Promise<number> {
    const { signal, expired } = context;
    const open = this.handles.require(handle);
    const onExpiry = () => open.file.abandon?.(expired.reason instanceof Error ? expired.reason : new Error(String(expired.reason)));
    expired.addEventListener('abort', onExpiry, { once: true });
    try {
      return await this.handles.call(handle, 'write', (file) => file.write(offset, data, signal));
    } finally {
      expired.removeEventListener('abort', onExpiry);
    }
  }

  /** close(2): for a writer, returns once the object store has the whole object; each part it acknowledges is progress. */
  async flush(context: RequestContext, _nodeId: number, handle: number): Promise<void> {
    return this.handles.call(handle, 'flush', (file) => file.flush(context.progress));
  }

  async fsync(context: RequestContext, _nodeId: number, handle: number, _dataOnly: boolean): Promise<void> {
    return this.handles.call(handle, 'fsync', (file) => file.fsync(context.progress));
  }

  /** An OPEN or CREATE the kernel never got: the handle goes without publishing anything. */
  discard(_nodeId: number, handle: number): void {
    this.handles.discard(handle);
  }

  async release(_context: RequestContext, _nodeId: number, handle: number, _flags: number): Promise<void> {
    return this.handles.release(handle);
  }

  // -- directories ------------------------------------------------------------------------------

  async opendir(_context: RequestContext, nodeId: number, _flags: number): Promise<OpenReply> {
    const node = this.directoryNode(nodeId);
    const handle = this.handles.allocateHandle();
    this.directories.set(handle, { node });
    this.options.session?.opened(handle, { kind: 'directory', nodeId: node.id });
    return { handle };
  }

  async readdir(_context: RequestContext, _nodeId: number, handle: number, offset: number, size: number): Promise<DirectoryEntry[]> {
    const listed = await this.listingOf(handle, offset);
    // Entry i has nextOffset i + 1, so `offset` is also the index to continue from.
    return listed.slice(offset, offset + Math.ceil(size / MIN_DIRENT_BYTES)).map((entry) => entry.dirent);
  }

  /** Entries with attributes, as many as fit in `size`: each one sent (but '.' and '..') is one kernel lookup of its node. */
  async readdirplus(_context: RequestContext, _nodeId: number, handle: number, offset: number, size: number): Promise<DirectoryEntryPlus[]> {
    const listed = await this.listingOf(handle, offset);
    const entries: DirectoryEntryPlus[] = [];
    let bytes = 0;
    for (let index = offset; index < listed.length; index++) {
      const { dirent, path, stat } = listed[index] as ListedEntry;
      bytes += direntPlusSize(Buffer.byteLength(dirent.name));
      if (bytes > size) break;
      if (path === undefined || stat === undefined) {
        entries.push(dirent);
        continue;
      }
      const node = this.inodes.remember(path, stat.kind);
      entries.push({ ...dirent, ino: node.id, entry: this.entryOf(node, stat) });
    }
    return entries;
  }

  /** The listing of open directory `handle`: taken at offset 0 (the first read or a rewinddir(3)), else the one taken then. */
  private async listingOf(handle: number, offset: number): Promise<ListedEntry[]> {
    const directory = this.directories.get(handle);
    if (!directory) throw new FuseError(Errno.EBADF);
    if (offset === 0 || !directory.listing) {
      directory.listing = this.listDirectory(directory.node);
      directory.listing.catch(() => undefined); // observed by the await below; a retry lists again
    }
    try {
      return await directory.listing;
    } catch (error) {
      directory.listing = undefined;
      throw toFuseError(error, 'readdir', directory.node.path, this.options.logger);
    }
  }

  async releasedir(_context: RequestContext, _nodeId: number, handle: number): Promise<void> {
    if (this.directories.delete(handle)) this.options.session?.released(handle);
  }

  /** Every namespace change is durable when its call returns; files are made durable by their own fsync. */
  async fsyncdir(): Promise<void> {}

  destroy(): void {
    this.handles.clear();
    this.directories.clear();
  }

  /** Resolves once every release still publishing has finished, or after `timeoutMs` (at unmount, before the store closes). */
  async settle(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.writing.allReleases(), timedOut]);
    clearTimeout(timer);
  }

  /** At unmount: stops the read path's fetches and drops its cache. */
  close(): void {
    this.opener.close();
  }

  private async listDirectory(node: Inode): Promise<ListedEntry[]> {
    // The namespace keeps this listing to answer the lookups `ls -l` may send next, without a HEAD per file.
    const children = await this.namespace.list(node.path);
    const parent = this.inodes.byPath(parentPath(node.path)) ?? this.inodes.root;
    const entries: ListedEntry[] = [
      { dirent: { ino: node.id, name: '.', type: DirentType.DIRECTORY, nextOffset: 1 } },
      { dirent: { ino: parent.id, name: '..', type: DirentType.DIRECTORY, nextOffset: 2 } },
    ];
    for (const { name, stat } of children) {
      const path = childPath(node.path, name);
      entries.push({
        dirent: {
          ino: this.inodes.byPath(path)?.id ?? UNKNOWN_INO,
          name,
          type: stat.kind === 'directory' ? DirentType.DIRECTORY : DirentType.REGULAR,
          nextOffset: entries.length + 1,
        },
        path,
        stat,
      });
    }
    return entries;
  }

  // -- helpers ----------------------------------------------------------------------------------

  private checkWritable(): void {
    if (this.options.readOnly) throw new FuseError(Errno.EROFS);
  }

  private node(nodeId: number): Inode {
    const node = this.inodes.get(nodeId);
    // The kernel only uses ids it holds a lookup on; an unknown one means it is out of sync.
    if (!node) throw new FuseError(Errno.ESTALE, `unknown node id ${nodeId}`);
    return node;
  }

  private directoryNode(nodeId: number): Inode {
    const node = this.node(nodeId);
    if (node.kind !== 'directory') throw new FuseError(Errno.ENOTDIR);
    return node;
  }

  /** The path of `name` in directory `parent`, after the checks every name gets (length, key length). */
  private childOf(parent: number, name: string): string {
    const directory = this.directoryNode(parent);
    if (name === '' || name.includes('/') || name.includes('\0')) throw new FuseError(Errno.EINVAL, `invalid name "${name}"`);
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new FuseError(Errno.ENAMETOOLONG);
    const path = childPath(directory.path, name);
    // A directory's marker key (`path/`) is the longest key the path needs.
    if (Buffer.byteLength(this.namespace.keyOf(path)) + 1 > MAX_KEY_BYTES) throw new FuseError(Errno.ENAMETOOLONG, `the object key of ${path} would exceed ${MAX_KEY_BYTES} bytes`);
    return path;
  }

  /** What `path` is now, with store failures mapped to errno and logged. */
  private async stat(path: string, operation: string): Promise<PathStat> {
    try {
      return await this.namespace.stat(path);
    } catch (error) {
      throw toFuseError(error, operation, path, this.options.logger);
    }
  }

  private entryOf(node: Inode, stat: PathStat): EntryReply {
    return {
      nodeId: node.id,
      generation: 0, // node ids are never reused
      entryTimeoutMs: this.options.attrTimeoutMs,
      attrTimeoutMs: this.options.attrTimeoutMs,
      attributes: this.attributesOf(node, stat),
    };
  }

  private attributesOf(node: Inode, stat: PathStat): Attributes {
    const directory = stat.kind === 'directory';
    const times = this.times.get(node.path, stat.etag);
    return {
      ino: node.id,
      size: stat.size,
      atimeMs: times?.atimeMs ?? stat.mtimeMs,
      mtimeMs: times?.mtimeMs ?? stat.mtimeMs,
      ctimeMs: stat.mtimeMs,
      mode: directory ? fsConstants.S_IFDIR | this.ownership.dirMode : fsConstants.S_IFREG | this.ownership.fileMode,
      // 1 for directories too: "unknown number of subdirectories" (as btrfs), which keeps
      // find(1) from skipping entries on the nlink-2 leaf heuristic.
      nlink: 1,
      uid: this.ownership.uid,
      gid: this.ownership.gid,
      blksize: PREFERRED_IO_SIZE,
    };
  }
}
