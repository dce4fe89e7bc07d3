// A least-recently-used map bounded by the total size of its values, not by their count: the mount's
// block cache and the cache server's tiers (RAM holds the blocks, disk holds their sizes). Generic leaf:
// imports nothing from src/.

/** A value the LRU can weigh. */
export interface Sized {
  readonly length: number;
}

/** An LRU of byte-sized values whose total never exceeds its capacity (a value larger than it is not kept). */
export class ByteLru<V extends Sized> {
  // A Map iterates in insertion order; re-inserting on use keeps the least recently used first.
  private readonly entries = new Map<string, V>();
  private used = 0;
  /** Values dropped to make room, for metrics. */
  evictions = 0;

  /** `onEvict` hears of every value dropped to make room (not of deletes or replacements). */
  constructor(
    readonly capacityBytes: number,
    private readonly onEvict?: (id: string, value: V) => void,
  ) {}

  /** Bytes held now. */
  get bytes(): number {
    return this.used;
  }

  /** How many values are held. */
  get size(): number {
    return this.entries.size;
  }

  /** The value under `id`, marking it most recently used. */
  get(id: string): V | undefined {
    const value = this.entries.get(id);
    if (value === undefined) return undefined;
    this.entries.delete(id);
    this.entries.set(id, value);
    return value;
  }

  /** Whether `id` is held, without touching its recency. */
  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** The value under `id`, without touching its recency. */
  peek(id: string): V | undefined {
    return this.entries.get(id);
  }

  /** The least recently used entry (the next to be evicted), without touching its recency. */
  peekOldest(): [id: string, value: V] | undefined {
    const oldest = this.entries.entries().next();
    return oldest.done ? undefined : oldest.value;
  }

  /** Every entry, least recently used first, without touching recency; do not change the LRU while iterating. */
  entriesOldestFirst(): IterableIterator<[id: string, value: V]> {
    return this.entries.entries();
  }

  /** Stores `value` as the most recently used, evicting the least recently used until it fits. */
  set(id: string, value: V): void {
    this.delete(id);
    if (value.length > this.capacityBytes) return;
    while (this.used + value.length > this.capacityBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      const evicted = this.entries.get(oldest.value) as V;
      this.delete(oldest.value);
      this.evictions++;
      this.onEvict?.(oldest.value, evicted);
    }
    this.entries.set(id, value);
    this.used += value.length;
  }

  /** Drops `id` if held. */
  delete(id: string): void {
    const value = this.entries.get(id);
    if (value === undefined) return;
    this.entries.delete(id);
    this.used -= value.length;
  }

  /** Drops everything. */
  clear(): void {
    this.entries.clear();
    this.used = 0;
  }
}
