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
  private readonly listings = new Map<string, { listing: DirectoryListing; expiresAt: number }>();
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

  private track(path: string, list: () => Promise<DirectoryListing>): Pending {
    const set = this.pending.get(path) ?? new Set<Pending>();
    this.pending.set(path, set);
    const pending = { stale: false } as Pending;
    set.add(pending);
    const takenAtMs = this.clock();
    pending.promise = list()
      .then((listing) => {
        // The cache keeps its own copy: callers may read theirs after later changes updated the cached one.
        if (!pending.stale) this.store(path, { children: new Map(listing.children), complete: listing.complete, takenAtMs });
        return { ...listing, takenAtMs };
      })
      .finally(() => {
        set.delete(pending);
        if (set.size === 0 && this.pending.get(path) === set) this.pending.delete(path);
      });
    return pending;
  }

  private store(path: string, listing: DirectoryListing): void {
    if (this.ttlMs <= 0) return;
    this.drop(path); // re-insert: Map order is age order
    this.listings.set(path, { listing, expiresAt: this.clock() + this.ttlMs });
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
  }
}
