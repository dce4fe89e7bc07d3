// A short-lived cache of what each path is (file or directory, size, ETag), so `ls -l` after a
// listing and repeated stat(2) calls do not each cost a HEAD and a LIST.
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

/** A TTL cache of PathStat by path. */
export class AttrCache {
  private readonly entries = new Map<string, { stat: PathStat; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly clock: () => number = Date.now,
    private readonly maxEntries = ATTR_CACHE_MAX_ENTRIES,
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
    this.entries.delete(path);
  }
}
