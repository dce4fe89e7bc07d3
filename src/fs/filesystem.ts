// The granary filesystem: a volume prefix of an ObjectStore seen as files and directories.
// A file is the object at the same relative key; a directory is a common prefix or a `dir/` marker.
// This first version lists and reads: every mutating operation answers EROFS. Writes (streaming
// multipart upload, staging files, rename as copy + delete) come with the next issue.
import { constants as fsConstants } from 'node:fs';
import type { Logger } from '../log/logger';
import type { ObjectInfo, ObjectStore } from '../objectstore/store';
import { AttrCache, type PathStat } from './attr-cache';
import { Errno, toFuseError } from './errno';
import {
  FuseError,
  type AttrReply,
  type Attributes,
  type CreateReply,
  type DirectoryEntry,
  type EntryReply,
  type FuseOperations,
  type OpenReply,
  type RequestContext,
  type StatfsReply,
} from './fuse/operations';
import { direntSize, DirentType, OpenFlag, UNKNOWN_INO } from './fuse/protocol';
import { childPath, InodeTable, parentPath, type Inode } from './inodes';

/** Permission bits and type of every file: read for all, write for the owner (root). */
export const FILE_MODE = fsConstants.S_IFREG | 0o644;

/** Permission bits and type of every directory. */
export const DIRECTORY_MODE = fsConstants.S_IFDIR | 0o755;

/** st_blksize: the I/O size applications (cp, cat) are told to use; matches the largest FUSE request. */
export const PREFERRED_IO_SIZE = 1024 * 1024;

/** The longest name Linux accepts in a path component, in bytes. */
export const MAX_NAME_BYTES = 255;

/** statfs numbers: an object store has no fixed size, so report a huge, mostly free one (df shows 1 PiB). */
export const STATFS_BLOCK_SIZE = 4096;
const STATFS_TOTAL_BLOCKS = 2 ** 50 / STATFS_BLOCK_SIZE;
const STATFS_TOTAL_FILES = 2 ** 40;

/** Options of a Filesystem. */
export interface FilesystemOptions {
  store: ObjectStore;
  /** The volume's key prefix: '' (whole bucket) or ending with '/'. */
  prefix: string;
  /** How long attributes and name bindings are cached, here and in the kernel (ms). */
  attrTimeoutMs: number;
  /** Keys asked per LIST page (S3 returns at most 1000). */
  listPageSize: number;
  logger: Logger;
  /** The clock, for cache expiry and directory times. */
  clock?: () => number;
}

/** What an open file reads: the object version seen at open(2). */
interface FileHandle {
  node: Inode;
  key: string;
  size: number;
  mtimeMs: number;
  etag: string | undefined;
}

/** An open directory: its listing, taken at the first READDIR (again at a rewind to offset 0). */
interface DirectoryHandle {
  node: Inode;
  listing?: Promise<DirectoryEntry[]>;
}

/** The access-mode bits of open(2) flags (O_ACCMODE on Linux; node:fs does not export it). */
const O_ACCMODE = 0o3;

/** The smallest encoded dirent (a one-byte name): bounds how many entries one READDIR reply can hold. */
const MIN_DIRENT_BYTES = direntSize(1);

/** The granary FUSE filesystem over one volume prefix of an ObjectStore. */
export class Filesystem implements FuseOperations {
  /** Node ids and paths known to the kernel. */
  readonly inodes = new InodeTable();
  private readonly attrs: AttrCache;
  private readonly files = new Map<number, FileHandle>();
  private readonly directories = new Map<number, DirectoryHandle>();
  /** Inode id → ETag read by the last open, to keep the page cache when the object did not change. */
  private readonly lastOpenedEtag = new Map<number, string>();
  private nextHandle = 1;
  private readonly clock: () => number;
  /** Times shown for directories that have no marker object. */
  private readonly mountedAtMs: number;

  constructor(private readonly options: FilesystemOptions) {
    if (options.prefix !== '' && !options.prefix.endsWith('/')) throw new Error(`volume prefix "${options.prefix}" must be empty or end with "/"`);
    this.clock = options.clock ?? Date.now;
    this.mountedAtMs = this.clock();
    this.attrs = new AttrCache(options.attrTimeoutMs, this.clock);
  }

  // -- names and attributes ---------------------------------------------------------------------

  async lookup(_context: RequestContext, parent: number, name: string): Promise<EntryReply> {
    const directory = this.directoryNode(parent);
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new FuseError(Errno.ENAMETOOLONG);
    const path = childPath(directory.path, name);
    const stat = await this.stat(path, 'lookup');
    const node = this.inodes.remember(path, stat.kind);
    return {
      nodeId: node.id,
      generation: 0, // node ids are never reused
      entryTimeoutMs: this.options.attrTimeoutMs,
      attrTimeoutMs: this.options.attrTimeoutMs,
      attributes: this.attributesOf(node, stat),
    };
  }

  forget(nodeId: number, lookups: number): void {
    this.inodes.forget(nodeId, lookups);
    if (!this.inodes.get(nodeId)) this.lastOpenedEtag.delete(nodeId);
  }

  async getattr(_context: RequestContext, nodeId: number, handle?: number): Promise<AttrReply> {
    const node = this.node(nodeId);
    // fstat(2) on an open file describes the version being read.
    const file = handle !== undefined ? this.files.get(handle) : undefined;
    const stat: PathStat = file ? { kind: 'file', size: file.size, mtimeMs: file.mtimeMs } : await this.stat(node.path, 'getattr');
    // The path now names something of another type: this node, as the kernel knows it, is gone.
    if (stat.kind !== node.kind) throw new FuseError(Errno.ENOENT);
    return { attributes: this.attributesOf(node, stat), timeoutMs: this.options.attrTimeoutMs };
  }

  async access(_context: RequestContext, nodeId: number, mask: number): Promise<void> {
    this.node(nodeId);
    if (mask & fsConstants.W_OK) throw new FuseError(Errno.EROFS);
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

  // -- files ------------------------------------------------------------------------------------

  async open(_context: RequestContext, nodeId: number, flags: number): Promise<OpenReply> {
    const node = this.node(nodeId);
    if (node.kind === 'directory') throw new FuseError(Errno.EISDIR);
    if ((flags & O_ACCMODE) !== fsConstants.O_RDONLY || flags & fsConstants.O_TRUNC) throw new FuseError(Errno.EROFS);
    const stat = await this.stat(node.path, 'open');
    if (stat.kind !== 'file') throw new FuseError(Errno.ENOENT);
    const handle = this.nextHandle++;
    this.files.set(handle, { node, key: this.keyOf(node.path), size: stat.size, mtimeMs: stat.mtimeMs, etag: stat.etag });
    // Keep the kernel's cached pages only when the object is the version they came from.
    const keepCache = stat.etag !== undefined && this.lastOpenedEtag.get(node.id) === stat.etag;
    if (stat.etag !== undefined) this.lastOpenedEtag.set(node.id, stat.etag);
    return { handle, flags: keepCache ? OpenFlag.KEEP_CACHE : 0 };
  }

  async read(_context: RequestContext, _nodeId: number, handle: number, offset: number, size: number): Promise<Buffer> {
    const file = this.files.get(handle);
    if (!file) throw new FuseError(Errno.EBADF);
    const end = Math.min(offset + size, file.size);
    if (offset >= end) return Buffer.alloc(0);
    try {
      // Exactly the bytes the kernel asked for; readahead and caching come with the block reader.
      const result = await this.options.store.get(file.key, { range: { start: offset, end }, ...(file.etag !== undefined && { ifMatch: file.etag }) });
      const chunks: Buffer[] = [];
      let length = 0;
      for await (const chunk of result.body as AsyncIterable<Buffer>) {
        chunks.push(chunk);
        length += chunk.length;
      }
      return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length);
    } catch (error) {
      throw toFuseError(error, 'read', file.node.path, this.options.logger);
    }
  }

  async flush(): Promise<void> {
    // Nothing buffered: files are read-only in this version.
  }

  async fsync(): Promise<void> {
    // Nothing buffered: files are read-only in this version.
  }

  async release(_context: RequestContext, _nodeId: number, handle: number, _flags: number): Promise<void> {
    this.files.delete(handle);
  }

  // -- directories ------------------------------------------------------------------------------

  async opendir(_context: RequestContext, nodeId: number, _flags: number): Promise<OpenReply> {
    const node = this.directoryNode(nodeId);
    const handle = this.nextHandle++;
    this.directories.set(handle, { node });
    return { handle };
  }

  async readdir(_context: RequestContext, _nodeId: number, handle: number, offset: number, size: number): Promise<DirectoryEntry[]> {
    const directory = this.directories.get(handle);
    if (!directory) throw new FuseError(Errno.EBADF);
    // Offset 0 is the first read or a rewinddir(3): (re)take the listing.
    if (offset === 0 || !directory.listing) {
      directory.listing = this.listDirectory(directory.node);
      directory.listing.catch(() => undefined); // observed by the await below; a retry lists again
    }
    let entries: DirectoryEntry[];
    try {
      entries = await directory.listing;
    } catch (error) {
      directory.listing = undefined;
      throw toFuseError(error, 'readdir', directory.node.path, this.options.logger);
    }
    // Entry i has nextOffset i + 1, so `offset` is also the index to continue from.
    return entries.slice(offset, offset + Math.ceil(size / MIN_DIRENT_BYTES));
  }

  async releasedir(_context: RequestContext, _nodeId: number, handle: number): Promise<void> {
    this.directories.delete(handle);
  }

  /**
   * The whole listing of a directory, following continuation tokens. Taken at once rather than page
   * by page because S3 may list an object "a" and a prefix "a/" far apart (e.g. "a", "a.txt", "a/"),
   * and the directory must win over the file before any entry is handed out.
   */
  private async listDirectory(node: Inode): Promise<DirectoryEntry[]> {
    const listPrefix = this.directoryPrefix(node.path);
    const found = new Map<string, PathStat>();
    let continuationToken: string | undefined;
    do {
      const page = await this.options.store.list({ prefix: listPrefix, delimiter: '/', maxKeys: this.options.listPageSize, ...(continuationToken !== undefined && { continuationToken }) });
      for (const object of page.objects) {
        const name = object.key.slice(listPrefix.length);
        if (this.isListableName(name, node.path) && !found.has(name)) found.set(name, this.fileStat(object));
      }
      for (const common of page.commonPrefixes) {
        const name = common.slice(listPrefix.length, -1);
        if (this.isListableName(name, node.path)) found.set(name, { kind: 'directory', size: 0, mtimeMs: this.mountedAtMs });
      }
      continuationToken = page.nextToken;
    } while (continuationToken !== undefined);

    const parent = this.inodes.byPath(parentPath(node.path)) ?? this.inodes.root;
    const entries: DirectoryEntry[] = [
      { ino: node.id, name: '.', type: DirentType.DIRECTORY, nextOffset: 1 },
      { ino: parent.id, name: '..', type: DirentType.DIRECTORY, nextOffset: 2 },
    ];
    // Names in order (pages hold their objects and prefixes apart); ls sorts anyway, this keeps it stable.
    const names = [...found.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      const stat = found.get(name) as PathStat;
      const path = childPath(node.path, name);
      // The listing answers the lookups `ls -l` sends next, without a HEAD per file.
      this.attrs.set(path, stat);
      entries.push({
        ino: this.inodes.byPath(path)?.id ?? UNKNOWN_INO,
        name,
        type: stat.kind === 'directory' ? DirentType.DIRECTORY : DirentType.REGULAR,
        nextOffset: entries.length + 1,
      });
    }
    return entries;
  }

  private isListableName(name: string, directoryPath: string): boolean {
    // '' is the directory's own marker ("dir/"), or an empty segment from a key like "a//b".
    if (name === '' || name === '.' || name === '..' || name.includes('/')) return false;
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
      this.options.logger.debug({ path: directoryPath, name: name.slice(0, 64) }, 'key name too long for a file name; not listed');
      return false;
    }
    return true;
  }

  // -- mutations: not in this version -------------------------------------------------------------

  async setattr(): Promise<AttrReply> {
    throw new FuseError(Errno.EROFS);
  }

  async write(): Promise<number> {
    throw new FuseError(Errno.EROFS);
  }

  async create(): Promise<CreateReply> {
    throw new FuseError(Errno.EROFS);
  }

  async mkdir(): Promise<EntryReply> {
    throw new FuseError(Errno.EROFS);
  }

  async mknod(): Promise<EntryReply> {
    throw new FuseError(Errno.EROFS);
  }

  async unlink(): Promise<void> {
    throw new FuseError(Errno.EROFS);
  }

  async rmdir(): Promise<void> {
    throw new FuseError(Errno.EROFS);
  }

  async rename(): Promise<void> {
    throw new FuseError(Errno.EROFS);
  }

  destroy(): void {
    this.files.clear();
    this.directories.clear();
  }

  // -- helpers ----------------------------------------------------------------------------------

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

  /** The object key of a path. */
  private keyOf(path: string): string {
    return this.options.prefix + path;
  }

  /** The prefix that lists a directory's children. */
  private directoryPrefix(path: string): string {
    return path === '' ? this.options.prefix : `${this.options.prefix}${path}/`;
  }

  private fileStat(object: ObjectInfo): PathStat {
    return { kind: 'file', size: object.size, mtimeMs: object.lastModified.getTime(), etag: object.etag };
  }

  /** What `path` is now: from the attr cache, or asked of the store. */
  private async stat(path: string, operation: string): Promise<PathStat> {
    if (path === '') return { kind: 'directory', size: 0, mtimeMs: this.mountedAtMs };
    const cached = this.attrs.get(path);
    if (cached) return cached;
    let stat: PathStat;
    try {
      stat = await this.resolve(path);
    } catch (error) {
      throw toFuseError(error, operation, path, this.options.logger);
    }
    this.attrs.set(path, stat);
    return stat;
  }

  /**
   * Asks the store what `path` is, with a HEAD of the key and a one-key LIST of `key/` at once: any
   * object or common prefix under `key/` (a `key/` marker included) makes it a directory, which wins
   * over an object of the same name; otherwise the HEAD decides.
   */
  private async resolve(path: string): Promise<PathStat> {
    const key = this.keyOf(path);
    const [head, list] = await Promise.allSettled([
      this.options.store.head(key),
      this.options.store.list({ prefix: `${key}/`, delimiter: '/', maxKeys: 1 }),
    ]);
    if (list.status === 'fulfilled') {
      const { objects, commonPrefixes } = list.value;
      if (objects.length > 0 || commonPrefixes.length > 0) {
        const marker = objects.find((object) => object.key === `${key}/`);
        return { kind: 'directory', size: 0, mtimeMs: marker ? marker.lastModified.getTime() : this.mountedAtMs };
      }
    }
    if (head.status === 'fulfilled') return this.fileStat(head.value);
    // Neither: a NotFound from HEAD means ENOENT only if the LIST worked; otherwise report the real failure.
    if (list.status === 'rejected') throw list.reason;
    throw head.reason;
  }

  private attributesOf(node: Inode, stat: PathStat): Attributes {
    const directory = stat.kind === 'directory';
    return {
      ino: node.id,
      size: stat.size,
      atimeMs: stat.mtimeMs,
      mtimeMs: stat.mtimeMs,
      ctimeMs: stat.mtimeMs,
      mode: directory ? DIRECTORY_MODE : FILE_MODE,
      // 1 for directories too: "unknown number of subdirectories" (as btrfs), which keeps
      // find(1) from skipping entries on the nlink-2 leaf heuristic.
      nlink: 1,
      uid: 0,
      gid: 0,
      blksize: PREFERRED_IO_SIZE,
    };
  }
}
