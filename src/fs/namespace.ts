// The POSIX namespace over a volume prefix: what a path is, what a directory holds, and the
// changes to names (mkdir, rmdir, unlink, rename) as plain object operations, so the bucket stays a
// bucket that other S3 tools read and write. Paths are relative to the volume root ('' is the root).
import type { Logger } from '../log/logger';
import type { ObjectInfo, ObjectStore } from '../objectstore/store';
import { forEachLimited } from '../util/for-each-limited';
import type { AttrCache, PathStat, TimesCache } from './attr-cache';
import type { DirectoryCache, DirectoryListing } from './directory-cache';
import { Errno, errnoOf } from './errno';
import { FuseError } from './fuse/operations';
import { parentPath, type InodeTable } from './inodes';
import type { WritingFiles } from './writing-files';
import { listingsOfSubtree } from './subtree-listing';
import { PrefetchGate } from './prefetch-gate';

/** renameat2(2) flags (linux/fs.h). */
export const RenameFlag = {
  NOREPLACE: 1 << 0,
  EXCHANGE: 1 << 1,
  WHITEOUT: 1 << 2,
} as const;

/** Options of a Namespace. */
export interface NamespaceOptions {
  store: ObjectStore;
  /** The volume's key prefix: '' (whole bucket) or ending with '/'. */
  prefix: string;
  /** Keys asked per LIST page (S3 returns at most 1000). */
  listPageSize: number;
  /**
   * LIST pages a lookup may take to list its parent directory whole; a directory not listed within
   * them is "big" and its lookups ask the store name by name (HEAD + LIST).
   */
  lookupListPages: number;
  /**
   * How long after its LIST a complete listing may answer ENOENT for a name it lacks, without asking
   * the store; past it (or at 0) such a name gets a HEAD + LIST, so objects other clients put show at once.
   */
  negativeLookupMs: number;
  /** Subdirectories whose listings a directory read fetches ahead, in name order (one LIST page each); 0: none. */
  prefetchListings: number;
  /** How old (from the start of its LIST) a complete listing a directory read takes instead of listing afresh may be. */
  prefetchedListingMaxAgeMs: number;
  /** The clock the listings' ages are measured with. */
  clock: () => number;
  /** Objects copied (and then deleted) at once when a directory is renamed. */
  renameConcurrency: number;
  attrs: AttrCache;
  /** Listings that answer lookups; the AttrCache passes every change on to them. */
  directories: DirectoryCache;
  times: TimesCache;
  inodes: InodeTable;
  writing: WritingFiles;
  logger: Logger;
  /** Times shown for directories that have no marker object. */
  mountedAtMs: number;
}

/** One directory entry as the namespace sees it. */
export interface NamedStat {
  name: string;
  stat: PathStat;
}

/** Listings fetched ahead at once: a walk's next directories, without crowding out the reads. */
export const PREFETCH_CONCURRENCY = 4;

/**
 * Pages of a directory's subtree listed without a delimiter, at most, before prefetching falls back to one LIST per
 * subdirectory: a tree of up to this many pages (4,000 keys at the default page size) is listed in that many requests.
 */
export const SUBTREE_MAX_PAGES = 4;

/** The listing of a prefetch that gave up its turn: incomplete, so no read takes it and no lookup trusts its absences. */
const NOT_FETCHED: DirectoryListing = { children: new Map(), complete: false };

/** The longest name Linux accepts in a path component, in bytes. */
export const MAX_NAME_BYTES = 255;

/** Path-level operations over the store; the Filesystem maps node ids and errors around them. */
export class Namespace {
  /** Directories whose listing is to be fetched ahead, oldest first, and how many such LISTs run now. */
  private readonly prefetchGate: PrefetchGate;

  constructor(private readonly options: NamespaceOptions) {
    // A walk over wide directories keeps only the most recent ones waiting.
    this.prefetchGate = new PrefetchGate(PREFETCH_CONCURRENCY, 4 * Math.max(1, options.prefetchListings));
  }

  /** The object key of a path. */
  keyOf(path: string): string {
    return this.options.prefix + path;
  }

  /** The prefix that lists a directory's children (the directory marker's key). */
  directoryPrefix(path: string): string {
    return path === '' ? this.options.prefix : `${this.options.prefix}${path}/`;
  }

  /** What `path` is now: a file being written here, the attr cache, or asked of the store. Throws NotFound. */
  async stat(path: string): Promise<PathStat> {
    if (path === '') return { kind: 'directory', size: 0, mtimeMs: this.options.mountedAtMs };
    return this.options.writing.stat(path) ?? this.storedStat(path);
  }

  /** What the store (or the attr cache) says `path` is, ignoring files being written here. */
  async storedStat(path: string): Promise<PathStat> {
    const cached = this.options.attrs.get(path);
    if (cached) return cached;
    const listed = await this.listedStat(path);
    if (listed) return listed;
    const stat = await this.resolve(path);
    this.options.attrs.set(path, stat);
    return stat;
  }

  /**
   * What the parent's listing (cached, or taken now and shared with concurrent lookups) says `path`
   * is; throws NotFound when a complete listing younger than negativeLookupMs lacks it; undefined when
   * only the store can tell (a big directory, a name changed through this mount since the listing, or
   * one the listing lacks: another client may have just put it).
   */
  private async listedStat(path: string): Promise<PathStat | undefined> {
    const { directories, lookupListPages } = this.options;
    if (path === '' || !directories.enabled || lookupListPages <= 0) return undefined;
    const parent = parentPath(path);
    const listing = await directories.load(parent, () => this.listStored(parent, lookupListPages));
    const name = parent === '' ? path : path.slice(parent.length + 1);
    const stat = listing.children.get(name);
    if (stat) return stat;
    const knownAbsent = listing.complete && !listing.children.has(name);
    if (knownAbsent && this.options.clock() - (listing.takenAtMs ?? -Infinity) < this.options.negativeLookupMs) throw new FuseError(Errno.ENOENT, `${path}: not in the listing of its directory`);
    return undefined;
  }

  /** Like stat, but undefined when nothing is at `path`. */
  async statIfExists(path: string): Promise<PathStat | undefined> {
    try {
      return await this.stat(path);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /**
   * Asks the store what `path` is, with a HEAD of the key and a one-key LIST of `key/` at once: any
   * object or common prefix under `key/` (a `key/` marker included) makes it a directory, which wins
   * over an object of the same name; otherwise the HEAD decides.
   */
  private async resolve(path: string): Promise<PathStat> {
    const key = this.keyOf(path);
    const [head, list] = await Promise.allSettled([this.options.store.head(key), this.options.store.list({ prefix: `${key}/`, delimiter: '/', maxKeys: 1 })]);
    if (list.status === 'fulfilled') {
      const { objects, commonPrefixes } = list.value;
      if (objects.length > 0 || commonPrefixes.length > 0) {
        // `key/` sorts before every other key under it, so a marker is always the first object.
        const marker = objects.find((object) => object.key === `${key}/`);
        return { kind: 'directory', size: 0, mtimeMs: marker ? marker.lastModified.getTime() : this.options.mountedAtMs };
      }
    }
    if (head.status === 'fulfilled') return fileStat(head.value);
    // Neither: a NotFound from HEAD means ENOENT only if the LIST worked; otherwise report the real failure.
    if (list.status === 'rejected') throw list.reason;
    throw head.reason;
  }

  /**
   * The whole listing of directory `path`, following continuation tokens, plus the files being
   * written here. Taken at once rather than page by page because S3 may list an object "a" and a
   * prefix "a/" far apart (e.g. "a", "a.txt", "a/"), and the directory must win over the file.
   */
  async list(path: string): Promise<NamedStat[]> {
    const { directories, prefetchListings, prefetchedListingMaxAgeMs } = this.options;
    const listStored = () => this.listStored(path, Infinity);
    let listing: DirectoryListing;
    if (!directories.enabled) listing = await listStored();
    else if (prefetchListings <= 0) listing = await directories.refresh(path, listStored);
    else {
      listing = (await directories.takePrefetched(path, prefetchedListingMaxAgeMs)) ?? (await directories.refresh(path, listStored));
      this.prefetchSubdirectories(path, listing);
    }
    const found = new Map<string, PathStat>();
    for (const [name, stat] of listing.children) if (stat) found.set(name, stat);
    for (const [name, stat] of this.options.writing.childrenOf(path)) {
      if (found.get(name)?.kind !== 'directory') found.set(name, stat);
    }
    // Names in order (pages hold their objects and prefixes apart); ls sorts anyway, this keeps it stable.
    const names = [...found.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return names.map((name) => ({ name, stat: found.get(name) as PathStat }));
  }

  /**
   * Fetches ahead the listings of the first prefetchListings subdirectories of `path` (name order, as a walk goes)
   * that no listing covers yet, kept in the DirectoryCache where the walk's next directory read (and lookups) find
   * them, or join them while they run. First the whole subtree without a delimiter, up to SUBTREE_MAX_PAGES pages:
   * a small tree is then listed in a request or two; a larger one falls back to one LIST page per subdirectory,
   * PREFETCH_CONCURRENCY at a time. Each subdirectory's prefetch is registered before any LIST starts, so that a
   * change this mount makes there meanwhile keeps it from being taken. A failure costs only the prefetch.
   */
  private prefetchSubdirectories(path: string, listing: DirectoryListing): void {
    const { directories, prefetchListings, logger } = this.options;
    const names = [...listing.children].flatMap(([name, stat]) => (stat?.kind === 'directory' ? [name] : [])).sort();
    const children = names.slice(0, prefetchListings).map((name) => (path === '' ? name : `${path}/${name}`)).filter((child) => !directories.has(child));
    if (children.length === 0) return;
    let subtree: Promise<Map<string, DirectoryListing> | undefined> | undefined;
    const subtreeListings = () => (subtree ??= this.listSubtree(path).catch((error: unknown) => {
      logger.debug({ err: error, path }, 'listing a directory subtree failed; prefetching its subdirectories one by one');
      return undefined;
    }));
    for (const child of children) {
      const prefetch = directories.prefetch(child, async () => (await subtreeListings())?.get(child) ?? (await this.prefetchGate.run(() => this.listStored(child, 1))) ?? NOT_FETCHED);
      prefetch?.catch((error: unknown) => logger.debug({ err: error, path: child }, 'prefetching a directory listing failed'));
    }
  }

  /**
   * The listings of every directory under `path` from one listing of its keys without a delimiter, or undefined when
   * the subtree holds more than SUBTREE_MAX_PAGES pages of keys.
   */
  private async listSubtree(path: string): Promise<Map<string, DirectoryListing> | undefined> {
    const prefix = this.directoryPrefix(path);
    const objects: ObjectInfo[] = [];
    let continuationToken: string | undefined;
    for (let pages = 0; ; pages++) {
      if (pages >= SUBTREE_MAX_PAGES) return undefined;
      const page = await this.options.store.list({ prefix, maxKeys: this.options.listPageSize, ...(continuationToken !== undefined && { continuationToken }) });
      objects.push(...page.objects);
      continuationToken = page.nextToken;
      if (continuationToken === undefined) break;
    }
    return listingsOfSubtree({
      prefix, path, objects,
      listable: (name, directory) => this.isListableName(name, directory),
      fileStat,
      directoryStat: { kind: 'directory', size: 0, mtimeMs: this.options.mountedAtMs },
    });
  }

  /**
   * Lists the objects of directory `path` in the store, following continuation tokens for at most
   * `maxPages` pages. Only a complete listing holds children: S3 may list an object "a" and a prefix
   * "a/" pages apart (e.g. "a", "a.txt", "a/"), and the directory must win over the file, so a name
   * seen before the end is not known for sure.
   */
  private async listStored(path: string, maxPages: number): Promise<DirectoryListing> {
    const listPrefix = this.directoryPrefix(path);
    const children = new Map<string, PathStat>();
    let continuationToken: string | undefined;
    let pages = 0;
    do {
      if (pages++ >= maxPages) return { children: new Map(), complete: false };
      const page = await this.options.store.list({ prefix: listPrefix, delimiter: '/', maxKeys: this.options.listPageSize, ...(continuationToken !== undefined && { continuationToken }) });
      for (const object of page.objects) {
        const name = object.key.slice(listPrefix.length);
        if (this.isListableName(name, path) && !children.has(name)) children.set(name, fileStat(object));
      }
      for (const common of page.commonPrefixes) {
        const name = common.slice(listPrefix.length, -1);
        if (this.isListableName(name, path)) children.set(name, { kind: 'directory', size: 0, mtimeMs: this.options.mountedAtMs });
      }
      continuationToken = page.nextToken;
    } while (continuationToken !== undefined);
    return { children, complete: true };
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

  /** Creates directory `path` as its `path/` marker object, so it persists while empty. */
  async makeDirectory(path: string): Promise<PathStat> {
    if (await this.statIfExists(path)) throw new FuseError(Errno.EEXIST);
    const marker = await this.options.store.put(this.directoryPrefix(path), Buffer.alloc(0));
    const stat: PathStat = { kind: 'directory', size: 0, mtimeMs: marker.lastModified.getTime() };
    this.options.attrs.set(path, stat);
    return stat;
  }

  /** Creates an empty regular file at `path` at once (mknod(2) has no handle whose close would upload it). */
  async makeEmptyFile(path: string): Promise<PathStat> {
    if (await this.statIfExists(path)) throw new FuseError(Errno.EEXIST);
    const stat = fileStat(await this.options.store.put(this.keyOf(path), Buffer.alloc(0)));
    this.options.attrs.set(path, stat);
    return stat;
  }

  /** Removes empty directory `path`: ENOENT, ENOTDIR for a file, ENOTEMPTY when anything is under it. */
  async removeDirectory(path: string): Promise<void> {
    const stat = await this.stat(path);
    if (stat.kind !== 'directory') throw new FuseError(Errno.ENOTDIR);
    const marker = await this.checkEmpty(path);
    if (marker) await this.options.store.delete(marker);
    this.forgetTree(path); // not removed from the listing: an object of the same name may show now
    await this.keepParent(path);
  }

  /** Deletes the object of file `path`: ENOENT, EISDIR for a directory. */
  async removeFile(path: string): Promise<void> {
    const stat = await this.stat(path);
    if (stat.kind === 'directory') throw new FuseError(Errno.EISDIR);
    if (this.options.writing.filesOf(path).length > 0) {
      // POSIX keeps an unlinked open file readable and writable; here its close uploads it again.
      this.options.logger.warn({ path }, 'file unlinked while open for writing: its object is written again when the last descriptor closes');
      this.options.writing.drop(path);
    }
    await this.options.store.delete(this.keyOf(path));
    this.forgetTree(path);
    this.options.directories.removeChild(path);
    await this.keepParent(path);
  }

  /**
   * Renames `from` to `to` with renameat2 `flags` (open writers of `from` must have been made
   * durable first). A file is a server-side copy and a delete; a directory is the same for every
   * object under it, which is not atomic: see renameDirectory. `onProgress` is called at each object copied.
   */
  async rename(from: string, to: string, flags: number, onProgress?: () => void): Promise<void> {
    if (flags & (RenameFlag.EXCHANGE | RenameFlag.WHITEOUT)) throw new FuseError(Errno.EINVAL, 'RENAME_EXCHANGE and RENAME_WHITEOUT cannot be done with object copies');
    if (from === to) return;
    if (to.startsWith(`${from}/`)) throw new FuseError(Errno.EINVAL, 'cannot move a directory into itself');
    const source = await this.stat(from);
    const target = await this.statIfExists(to);
    if (target && flags & RenameFlag.NOREPLACE) throw new FuseError(Errno.EEXIST);
    try {
      if (source.kind === 'file') {
        if (target?.kind === 'directory') throw new FuseError(Errno.EISDIR);
        await this.options.store.copy(this.keyOf(from), this.keyOf(to));
        await this.options.store.delete(this.keyOf(from));
      } else {
        if (target?.kind === 'file') throw new FuseError(Errno.ENOTDIR);
        if (target) await this.checkEmpty(to);
        await this.renameDirectory(from, to, onProgress);
      }
    } finally {
      // Even a failed rename may have left copies under `to` (or removed `from`): only the store knows.
      this.options.attrs.deleteTree(from);
      this.options.attrs.deleteTree(to);
    }
    this.options.inodes.rename(from, to);
    this.options.times.rename(from, to);
    this.options.writing.rename(from, to);
    // A moved file leaves nothing behind; a moved directory may uncover an object of its name.
    if (source.kind === 'file') this.options.directories.removeChild(from);
    if (parentPath(from) !== parentPath(to)) await this.keepParent(from);
  }

  /**
   * Copies every object under `from/` (markers are put anew) to the same relative key under `to/`, page
   * by page, then deletes the sources. Not atomic: other clients see both trees while it runs, and a
   * failure midway leaves the copies made so far next to the complete source (nothing is deleted
   * before every copy succeeded); the error is logged with both prefixes and the application gets EIO.
   */
  private async renameDirectory(from: string, to: string, onProgress?: () => void): Promise<void> {
    const fromPrefix = this.directoryPrefix(from);
    const toPrefix = this.directoryPrefix(to);
    const copied: string[] = [];
    try {
      let continuationToken: string | undefined;
      do {
        const page = await this.options.store.list({ prefix: fromPrefix, maxKeys: this.options.listPageSize, ...(continuationToken !== undefined && { continuationToken }) });
        await forEachLimited(page.objects, this.options.renameConcurrency, async ({ key, size }) => {
          const destination = toPrefix + key.slice(fromPrefix.length);
          // A marker holds nothing to copy, and some stores (versitygw over POSIX) refuse to copy a "dir/" key.
          if (key.endsWith('/') && size === 0) await this.options.store.put(destination, Buffer.alloc(0));
          else await this.options.store.copy(key, destination);
          copied.push(key);
          onProgress?.();
        });
        continuationToken = page.nextToken;
      } while (continuationToken !== undefined);
    } catch (error) {
      this.options.logger.error({ op: 'rename', from, to, copied: copied.length, err: error }, `directory rename failed midway: ${copied.length} objects were copied to ${toPrefix} and ${fromPrefix} is complete; remove the partial copy or retry the rename`);
      throw new FuseError(Errno.EIO, `rename ${from} -> ${to}: ${(error as Error).message}`, { cause: error });
    }
    const failed = await this.options.store.deleteMany(copied).catch((error: unknown) => {
      this.options.logger.error({ op: 'rename', from, to, err: error }, `directory rename copied everything to ${toPrefix} but could not delete ${fromPrefix}: delete it by hand`);
      throw new FuseError(Errno.EIO, `rename ${from} -> ${to}: ${(error as Error).message}`, { cause: error });
    });
    if (failed.length > 0) {
      this.options.logger.error({ op: 'rename', from, to, undeleted: failed.length, example: failed[0] }, `directory rename copied everything to ${toPrefix} but ${failed.length} objects under ${fromPrefix} could not be deleted: delete them by hand`);
      throw new FuseError(Errno.EIO, `rename ${from} -> ${to}: ${failed.length} source objects not deleted`);
    }
  }

  /**
   * Throws ENOTEMPTY when anything but its own marker is under directory `path` (in the store or
   * being written here); returns the marker's key when there is one.
   */
  private async checkEmpty(path: string): Promise<string | undefined> {
    if (this.options.writing.hasAnyUnder(path)) throw new FuseError(Errno.ENOTEMPTY);
    const prefix = this.directoryPrefix(path);
    const page = await this.options.store.list({ prefix, maxKeys: 2 });
    if (page.objects.some((object) => object.key !== prefix)) throw new FuseError(Errno.ENOTEMPTY);
    return page.objects.some((object) => object.key === prefix) ? prefix : undefined;
  }

  /**
   * Keeps the parent of a removed `path` a directory: a directory that exists only as the common
   * prefix of its objects would vanish with its last object, which POSIX tools do not expect (`rm
   * dir/*` then `ls dir`). One LIST per removal; the marker is put only when nothing is left. A
   * failure here is logged, not returned: the removal itself succeeded.
   */
  private async keepParent(path: string): Promise<void> {
    const parent = parentPath(path);
    if (parent === '' || this.options.writing.hasAnyUnder(parent)) return;
    const prefix = this.directoryPrefix(parent);
    try {
      const page = await this.options.store.list({ prefix, maxKeys: 1 });
      if (page.objects.length === 0 && page.commonPrefixes.length === 0) await this.options.store.put(prefix, Buffer.alloc(0));
    } catch (error) {
      this.options.logger.warn({ op: 'keep-directory', path: parent, err: error }, 'could not keep the emptied directory (it may disappear)');
    }
    this.options.attrs.delete(parent);
  }

  /** Forgets what this mount knew of `path` and below it, after it was deleted. */
  private forgetTree(path: string): void {
    this.options.attrs.deleteTree(path);
    this.options.times.deleteTree(path);
    this.options.inodes.detach(path);
  }
}

/** The stat of a file from what the store said of its object. */
export function fileStat(object: ObjectInfo): PathStat {
  return { kind: 'file', size: object.size, mtimeMs: object.lastModified.getTime(), etag: object.etag };
}

/** Whether `error` says that nothing is there (a store NotFound or ENOENT). */
export function isNotFound(error: unknown): boolean {
  return errnoOf(error) === Errno.ENOENT;
}
