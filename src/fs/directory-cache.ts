// A short-lived cache of directory listings, so a cold lookup is answered from one LIST of its
// parent (shared by every lookup in that directory) instead of a HEAD and a LIST per name.
import type { PathStat } from './attr-cache';
import { parentPath } from './inodes';

/**
 * What one LIST of a directory said. `children` maps a name to what it is, or to undefined when this
 * mount changed it since (ask the store). `complete` means no continuation token was left: a name
 * absent from a complete listing does not exist.
 */
export interface DirectoryListing {
  readonly children: Map<string, PathStat | undefined>;
  readonly complete: boolean;
  /** When the LIST started (set by the cache): the store may have changed since, through other clients. */
  readonly takenAtMs?: number;
}

/** The most children kept over all listings; past it the oldest listings are dropped. */
export const DIRECTORY_CACHE_MAX_ENTRIES = 100_000;

/** A listing being taken: `stale` once this mount changed the directory while it ran. */
interface Pending {
  promise: Promise<DirectoryListing>;
  stale: boolean;
}

/**
 * Listings by directory path, each kept for ttlMs.
 *
 * Why it stays consistent with this mount: a complete listing answers ENOENT for any name it does
 * not hold, so every change made through the mount must reach the listing of the changed name's
 * parent before the change returns. Changes we know exactly (mkdir, unlink, rmdir, a stat just
 * learned) update the entry; changes whose result we do not know (a writer flushed, a rename target)
 * turn the entry to undefined, "ask the store", which never claims ENOENT. A listing still being
 * taken when its directory changes may predate the change: it is marked stale, not stored, and no
 * later lookup joins it. Changes made by other clients are seen once the listing expires (ttlMs); the
 * Namespace trusts a listing's absences for less (negativeLookupMs), as new objects must show at once.
 */
export class DirectoryCache {
  private readonly listings = new Map<string, { listing: DirectoryListing; expiresAt: number; prefetched: boolean }>();
  /** Prefetches running, which a directory read may join. */
  private readonly prefetches = new Map<string, Pending>();
  private readonly pending = new Map<string, Set<Pending>>();
  /** Single-flight: the listing lookups of a directory currently share. */
  private readonly shared = new Map<string, Pending>();
  private entries = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly clock: () => number = Date.now,
    private readonly maxEntries = DIRECTORY_CACHE_MAX_ENTRIES,
  ) {}

  /** Whether listings are kept at all (a TTL of 0 turns the cache off). */
  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  /** The listing of directory `path` if it was taken less than ttlMs ago. */
  get(path: string): DirectoryListing | undefined {
    const cached = this.listings.get(path);
    if (!cached) return undefined;
    if (cached.expiresAt <= this.clock()) {
      this.drop(path);
      return undefined;
    }
    return cached.listing;
  }

  /**
   * The fresh listing of `path`, or the one being taken for another lookup, or a new one taken with
   * `list` (then stored, unless the directory changed meanwhile). Concurrent callers share one LIST.
   */
  async load(path: string, list: () => Promise<DirectoryListing>): Promise<DirectoryListing> {
    const cached = this.get(path);
    if (cached) return cached;
    const running = this.shared.get(path);
    if (running) return running.promise;
    const pending = this.track(path, list);
    this.shared.set(path, pending);
    try {
      return await pending.promise;
    } finally {
      if (this.shared.get(path) === pending) this.shared.delete(path);
    }
  }

  /** Takes a listing with `list` (readdir's own), and stores it unless the directory changed meanwhile. */
  async refresh(path: string, list: () => Promise<DirectoryListing>): Promise<DirectoryListing> {
    return this.track(path, list).promise;
  }

  /**
   * Takes a listing of `path` ahead of its directory read, with `list`, unless one is kept or being taken:
   * lookups share it as they share their own, and the directory read takes it once (takePrefetched).
   */
  prefetch(path: string, list: () => Promise<DirectoryListing>): Promise<DirectoryListing> | undefined {
    if (this.has(path)) return undefined;
    const pending = this.track(path, list, true);
    this.shared.set(path, pending);
    this.prefetches.set(path, pending);
    return pending.promise.finally(() => {
      if (this.shared.get(path) === pending) this.shared.delete(path);
      if (this.prefetches.get(path) === pending) this.prefetches.delete(path);
    });
  }

  /**
   * The prefetched listing of `path`, for its directory read, once: only if it is complete, its LIST started
   * at most `maxAgeMs` ago, and every change this mount made there since is known in it (no name turned to
   * "ask the store"); joins a prefetch still running. Undefined: the read lists afresh, as without prefetch.
   */
  async takePrefetched(path: string, maxAgeMs: number): Promise<DirectoryListing | undefined> {
    const running = this.prefetches.get(path);
    if (running) await running.promise.catch(() => undefined);
    const cached = this.listings.get(path);
    if (!cached?.prefetched || cached.expiresAt <= this.clock()) return undefined;
    cached.prefetched = false; // once: the next read of this directory lists afresh
    const { listing } = cached;
    if (!listing.complete || this.clock() - (listing.takenAtMs ?? -Infinity) > maxAgeMs) return undefined;
    for (const stat of listing.children.values()) if (stat === undefined) return undefined;
    return listing;
  }

  /** Whether `path` has a listing kept or being taken (a prefetch of it would add nothing). */
  has(path: string): boolean {
    return this.get(path) !== undefined || this.shared.has(path) || this.pending.has(path);
  }

  /** Records that `path` is now `stat` in its parent's listing. */
  setChild(path: string, stat: PathStat): void {
    this.change(path, (children, name) => children.set(name, stat));
  }

  /** Records that nothing is at `path` any more (deleted through this mount). */
  removeChild(path: string): void {
    this.change(path, (children, name) => children.delete(name));
  }

  /** Records that `path` changed in a way only the store knows (its next lookup asks the store). */
  forgetChild(path: string): void {
    this.change(path, (children, name) => children.set(name, undefined));
  }

  /** Drops the listings of directory `path` and every directory below it (removed or renamed). */
  forgetTree(path: string): void {
    const below = path === '' ? '' : `${path}/`;
    for (const key of [...this.listings.keys()]) if (key === path || key.startsWith(below)) this.drop(key);
    for (const [key, set] of this.pending) if (key === path || key.startsWith(below)) this.invalidatePending(key, set);
  }

  private track(path: string, list: () => Promise<DirectoryListing>, prefetched = false): Pending {
    const set = this.pending.get(path) ?? new Set<Pending>();
    this.pending.set(path, set);
    const pending = { stale: false } as Pending;
    set.add(pending);
    const takenAtMs = this.clock();
    pending.promise = list()
      .then((listing) => {
        // The cache keeps its own copy: callers may read theirs after later changes updated the cached one.
        if (!pending.stale) this.store(path, { children: new Map(listing.children), complete: listing.complete, takenAtMs }, prefetched);
        return { ...listing, takenAtMs };
      })
      .finally(() => {
        set.delete(pending);
        if (set.size === 0 && this.pending.get(path) === set) this.pending.delete(path);
      });
    return pending;
  }

  private store(path: string, listing: DirectoryListing, prefetched: boolean): void {
    if (this.ttlMs <= 0) return;
    this.drop(path); // re-insert: Map order is age order
    this.listings.set(path, { listing, expiresAt: this.clock() + this.ttlMs, prefetched });
    this.entries += listing.children.size;
    for (const oldest of this.listings.keys()) {
      if (this.entries <= this.maxEntries || oldest === path) break;
      this.drop(oldest);
    }
  }

  private drop(path: string): void {
    const cached = this.listings.get(path);
    if (!cached) return;
    this.entries -= cached.listing.children.size;
    this.listings.delete(path);
  }

  private change(path: string, update: (children: Map<string, PathStat | undefined>, name: string) => void): void {
    if (path === '') return; // the root has no parent listing
    const parent = parentPath(path);
    const name = parent === '' ? path : path.slice(parent.length + 1);
    const cached = this.listings.get(parent);
    if (cached) {
      const before = cached.listing.children.size;
      update(cached.listing.children, name);
      this.entries += cached.listing.children.size - before;
    }
    const set = this.pending.get(parent);
    if (set) this.invalidatePending(parent, set);
  }

  private invalidatePending(path: string, set: Set<Pending>): void {
    for (const pending of set) pending.stale = true;
    this.shared.delete(path);
    this.prefetches.delete(path);
  }
}
