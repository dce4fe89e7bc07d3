// The cache server's object store clients, one per bucket asked for, at most `capacity` of them: each holds
// an SDK client and its keep-alive sockets, so an unbounded set of them (a token holder naming thousands of
// buckets) would exhaust memory and file descriptors. Least recently used first out, closed when dropped.
import { ByteLru } from '../util/byte-lru';

/** What the pool holds: anything it can close when it drops it. */
export interface Closable {
  close(): void;
}

/** Options of an OriginPool. */
export interface OriginPoolOptions<C extends Closable> {
  /** Clients kept open at most (more only while evicted ones finish their work). */
  capacity: number;
  /** Opens the client of `bucket`. */
  open: (bucket: string) => C;
  /** Hears of every client just closed (to keep its counters). */
  onClose?: (bucket: string, client: C) => void;
}

/** One pooled client and the work using it now. */
interface Entry<C> {
  /** The LRU weighs entries: every one counts 1, so its capacity is a count. */
  readonly length: 1;
  readonly bucket: string;
  readonly client: C;
  users: number;
  /** Dropped from the pool (evicted, or the pool closed): closes once `users` is 0. */
  dropped: boolean;
}

/**
 * Clients by bucket, the least recently used closed to make room. A client is only ever used through use(),
 * which holds it for the duration of the work: one evicted while a fill still reads through it is closed
 * when that fill ends, not under it (closing destroys its sockets, which would cut the fill's body).
 */
export class OriginPool<C extends Closable> {
  private readonly kept: ByteLru<Entry<C>>;
  /** Every client not yet closed: the kept ones and the dropped ones still in use. */
  private readonly live = new Set<Entry<C>>();
  private closed = false;

  constructor(private readonly options: OriginPoolOptions<C>) {
    if (!(Number.isInteger(options.capacity) && options.capacity > 0)) throw new Error(`the origin pool's capacity must be a positive integer, got ${options.capacity}`);
    this.kept = new ByteLru<Entry<C>>(options.capacity, (_bucket, entry) => this.drop(entry));
  }

  /** Clients open now, dropped ones still in use included. */
  get size(): number {
    return this.live.size;
  }

  /** Every client open now (for their counters); do not close them. */
  clients(): C[] {
    return [...this.live].map((entry) => entry.client);
  }

  /** Runs `work` with the client of `bucket` (opened if the pool has none), which stays open until `work` settles. */
  async use<T>(bucket: string, work: (client: C) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('the origin pool is closed: the cache server is stopping');
    let entry = this.kept.get(bucket);
    if (!entry) {
      entry = { length: 1, bucket, client: this.options.open(bucket), users: 0, dropped: false };
      this.live.add(entry);
      // May evict the least recently used other entry; this one is the most recent.
      this.kept.set(bucket, entry);
    }
    entry.users++;
    try {
      return await work(entry.client);
    } finally {
      entry.users--;
      if (entry.dropped && entry.users === 0) this.closeEntry(entry);
    }
  }

  /**
   * Drops the client of `bucket` from the pool (closed once its users end), so that it takes no place there: for
   * a bucket the object store says does not exist, which would otherwise push real buckets' clients out.
   */
  discard(bucket: string): void {
    const entry = this.kept.peek(bucket);
    if (!entry) return;
    this.kept.delete(bucket);
    this.drop(entry);
  }

  /** Closes every client: idle ones now, those in use when their work ends. Later use() rejects. */
  close(): void {
    this.closed = true;
    const kept = [...this.kept.entriesOldestFirst()].map(([, entry]) => entry);
    this.kept.clear();
    for (const entry of kept) this.drop(entry);
  }

  private drop(entry: Entry<C>): void {
    entry.dropped = true;
    if (entry.users === 0) this.closeEntry(entry);
  }

  private closeEntry(entry: Entry<C>): void {
    if (!this.live.delete(entry)) return;
    entry.client.close();
    this.options.onClose?.(entry.bucket, entry.client);
  }
}
