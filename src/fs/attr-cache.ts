// A short-lived cache of what each path is (file or directory, size, ETag), so `ls -l` after a
// listing and repeated stat(2) calls do not each cost a HEAD and a LIST.
import type { DirectoryCache } from './directory-cache';
import type { NodeKind } from './inodes';

/** What granary knows of a path at one moment. */
export interface PathStat {
  kind: NodeKind;
  size: number;
  mtimeMs: number;
  /** The object's ETag (files only): identifies the version a handle reads. */
  etag?: string;
}

/** The most paths kept; past it the oldest are dropped (a listing of a huge directory fills it). */
export const ATTR_CACHE_MAX_ENTRIES = 100_000;

/**
 * A TTL cache of PathStat by path. Given the mount's DirectoryCache, it passes every change on to the
 * parent's listing: every place that learns or invalidates what a path is already goes through here,
 * so no change made through the mount can leave a listing claiming a stale stat or a stale ENOENT.
 */
export class AttrCache {
  private readonly entries = new Map<string, { stat: PathStat; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly clock: () => number = Date.now,
    private readonly maxEntries = ATTR_CACHE_MAX_ENTRIES,
    private readonly listings?: DirectoryCache,
  ) {}

  /** The stat of `path` if it was learned less than ttlMs ago. */
  get(path: string): PathStat | undefined {
    const entry = this.entries.get(path);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.clock()) {
      this.entries.delete(path);
      return undefined;
    }
    return entry.stat;
  }

  /** Remembers `stat` for `path` for ttlMs. */
  set(path: string, stat: PathStat): void {
    this.listings?.setChild(path, stat);
    if (this.ttlMs <= 0) return;
    this.entries.delete(path); // re-insert: Map order is age order
    this.entries.set(path, { stat, expiresAt: this.clock() + this.ttlMs });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  /** Forgets `path` (after a change made through this mount). */
  delete(path: string): void {
    this.listings?.forgetChild(path);
    this.entries.delete(path);
  }

  /** Forgets `path` and every path below it (after a directory was renamed or removed). */
  deleteTree(path: string): void {
    this.listings?.forgetChild(path);
    this.listings?.forgetTree(path);
    this.entries.delete(path);
    const below = path === '' ? '' : `${path}/`;
    for (const key of [...this.entries.keys()]) if (key.startsWith(below)) this.entries.delete(key);
  }
}

/** Times set with utimes(2) on one path; `etag` binds them to the object version they were set on. */
export interface SetTimes {
  atimeMs: number;
  mtimeMs: number;
  /** The ETag of the object the times describe; unset until the first stat of a file after its writer closed. */
  etag?: string;
}

/**
 * Times applications set with utimes(2) (tar, cp -p, make), kept in this mount's memory: S3 has no
 * settable modification time, but tools check that the time they set reads back. They outlive the
 * attribute TTL, follow renames, and are dropped once the object changes (a new ETag, e.g. rewritten
 * by another tool) or is deleted. Bounded like the AttrCache.
 */
export class TimesCache {
  private readonly entries = new Map<string, SetTimes>();

  constructor(private readonly maxEntries = ATTR_CACHE_MAX_ENTRIES) {}

  /** Records times set on `path` (the object's ETag when known, unset while a writer has it open). */
  set(path: string, times: SetTimes): void {
    this.entries.delete(path);
    this.entries.set(path, times);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  /**
   * The times set on `path` for the object version `etag` (undefined for directories and files
   * still being written): a first known ETag binds the times to that version; another one drops them.
   */
  get(path: string, etag: string | undefined): SetTimes | undefined {
    const times = this.entries.get(path);
    if (!times || etag === undefined) return times;
    if (times.etag === undefined) times.etag = etag;
    else if (times.etag !== etag) {
      this.entries.delete(path);
      return undefined;
    }
    return times;
  }

  /** Moves the times of `from` (and below it) to `to`, after a rename; what `to` had is dropped. */
  rename(from: string, to: string): void {
    this.deleteTree(to);
    const below = `${from}/`;
    for (const [key, times] of [...this.entries]) {
      if (key !== from && !key.startsWith(below)) continue;
      this.entries.delete(key);
      this.entries.set(to + key.slice(from.length), times);
    }
  }

  /** Drops the times of `path` and below it (deleted, or reopened with O_TRUNC/created again). */
  deleteTree(path: string): void {
    this.entries.delete(path);
    const below = `${path}/`;
    for (const key of [...this.entries.keys()]) if (key.startsWith(below)) this.entries.delete(key);
  }
}
