// The mount's RAM cache of block ranges, shared by every open file: bounded bytes (LRU), bounded
// fetches in flight, and one fetch per range however many readers ask for it at once.
import type { Logger } from '../../log/logger';
import type { BlockRequest, BlockFetcher } from '../../blocks/block-fetcher';
import { BlockBufferPool } from './buffer-pool';
import { ByteLru } from '../../util/byte-lru';
import { FetchLimiter, type FetchPriority, type ScheduledFetch } from './fetch-limiter';

/** Options of a BlockCache (see ReadPathConfig for the defaults). */
export interface BlockCacheOptions {
  fetcher: BlockFetcher;
  /** Bytes of ranges kept once fetched. */
  capacityBytes: number;
  /** Fetches running at once; with capacityBytes and the block size this bounds memory. */
  maxConcurrentFetches: number;
  /** Bytes that prefetched ranges nobody has read yet may take, in flight and cached; beyond it prefetch() does nothing. */
  readaheadBudgetBytes: number;
  /**
   * The block size: ranges of exactly this size are fetched into recycled buffers (see buffer-pool.ts), the
   * free ones counted in the memory bound. Without it every fetch allocates its own buffer.
   */
  blockSizeBytes?: number;
  logger: Logger;
  /** Aborts every fetch when the mount goes away. */
  signal?: AbortSignal;
}

/** Counters of a BlockCache, plain numbers that become metrics. */
export interface BlockCacheStats {
  /** Reads answered from memory. */
  hits: number;
  /** Reads that joined a fetch already in flight (single-flight). */
  joins: number;
  /** Fetches started for a reader that waits. */
  demandFetches: number;
  /** Fetches started by readahead. */
  readaheadFetches: number;
  /** Readahead fetches that failed (the reader that needs the range fetches it again). */
  readaheadFailures: number;
  /** Prefetches not started because the readahead budget was spent. */
  readaheadSkipped: number;
  /** Prefetched ranges evicted before anyone read them: a sign the cache is too small for the readers' windows. */
  readaheadWasted: number;
  /** Ranges dropped because a sequential reader had passed them (release()). */
  released: number;
}

/** What a range is cached under: the object version and the exact bytes. */
export function cacheIdOf(request: Pick<BlockRequest, 'key' | 'etag' | 'start' | 'end'>): string {
  // The key goes last: it may hold any character, the other fields cannot hold ':' or '-'.
  return `${request.etag}:${request.start}-${request.end}:${request.key}`;
}

/** A cached range, weighed by the memory it holds: a pooled range sits in a buffer of its size class (buffer-pool.ts). */
interface CachedRange {
  readonly length: number;
  readonly data: Buffer;
}

interface InFlight {
  scheduled: ScheduledFetch<Buffer>;
}

/**
 * Block ranges of object versions, fetched through a BlockFetcher. A range is fetched once however many
 * readers want it at the same time; once fetched it stays in an LRU bounded by bytes. Memory therefore
 * stays under capacityBytes + maxConcurrentFetches × the largest range, whatever the files' sizes, free
 * recycled buffers included.
 *
 * A Buffer that read() resolves with may be recycled for another block once evicted: read it (copy it, or
 * write it to /dev/fuse) in the continuation of that promise, before any I/O or timer (see buffer-pool.ts).
 */
export class BlockCache {
  /** Counters since creation. */
  readonly stats: BlockCacheStats = { hits: 0, joins: 0, demandFetches: 0, readaheadFetches: 0, readaheadFailures: 0, readaheadSkipped: 0, readaheadWasted: 0, released: 0 };
  private readonly lru: ByteLru<CachedRange>;
  private readonly limiter: FetchLimiter;
  private readonly inFlight = new Map<string, InFlight>();
  /** Prefetched ranges (in flight or cached) no reader has asked for yet, with their sizes. */
  private readonly unread = new Map<string, number>();
  private unreadBytes = 0;
  /** Recycled block buffers, when the block size is known. */
  private readonly pool: BlockBufferPool | undefined;
  /** Bytes of buffers held by fetches running now. */
  private fetchingBytes = 0;
  /** Buffers evicted during the current lru.set, given back to the pool once it returns. */
  private evicted: Buffer[] = [];

  constructor(private readonly options: BlockCacheOptions) {
    this.lru = new ByteLru<CachedRange>(options.capacityBytes, (id, value) => {
      if (this.markRead(id)) this.stats.readaheadWasted++;
      this.evicted.push(value.data);
    });
    this.limiter = new FetchLimiter(options.maxConcurrentFetches);
    if (options.blockSizeBytes !== undefined) this.pool = new BlockBufferPool(options.blockSizeBytes);
  }

  /** Counters of the recycled block buffers (zeros without a block size). */
  get bufferStats(): { reused: number; allocated: number; dropped: number; heldBytes: number } {
    return { reused: 0, allocated: 0, dropped: 0, ...this.pool?.stats, heldBytes: this.pool?.heldBytes ?? 0 };
  }

  /** Bytes of buffers the cache holds: cached, being filled by fetches, and free for reuse. */
  get heldBytes(): number {
    return this.lru.bytes + this.fetchingBytes + (this.pool?.heldBytes ?? 0);
  }

  /** Bytes held in memory now, fetches in flight excluded. */
  get cachedBytes(): number {
    return this.lru.bytes;
  }

  /** Values evicted to make room so far. */
  get evictions(): number {
    return this.lru.evictions;
  }

  /** Fetches running, and waiting for a slot. */
  get fetches(): { active: number; queued: number } {
    return { active: this.limiter.active, queued: this.limiter.queued };
  }

  /** Whether the range is in memory or being fetched: a cheaper way to the bytes than a new fetch. */
  holds(request: Omit<BlockRequest, 'signal'>): boolean {
    const id = cacheIdOf(request);
    return this.lru.has(id) || this.inFlight.has(id);
  }

  /** The bytes of the range: from memory, from a fetch in flight, or from a new fetch a reader waits on. */
  read(request: Omit<BlockRequest, 'signal'>): Promise<Buffer> {
    const id = cacheIdOf(request);
    this.markRead(id);
    const cached = this.lru.get(id);
    if (cached) {
      this.stats.hits++;
      return Promise.resolve(cached.data);
    }
    const running = this.inFlight.get(id);
    if (running) {
      this.stats.joins++;
      // A reader now waits on what may have been queued as a guess: let it jump the readahead queue.
      running.scheduled.promote();
      return running.scheduled.result;
    }
    return this.start(id, request, 'demand').result;
  }

  /**
   * Starts fetching the range in the background unless it is in memory or in flight, or the readahead
   * budget is spent (a window larger than what the cache can keep would only evict itself); failures are only counted.
   */
  prefetch(request: Omit<BlockRequest, 'signal'>): void {
    const id = cacheIdOf(request);
    if (this.lru.has(id) || this.inFlight.has(id)) return;
    const bytes = request.end - request.start;
    if (this.unreadBytes + bytes > this.options.readaheadBudgetBytes) {
      this.stats.readaheadSkipped++;
      return;
    }
    this.unread.set(id, bytes);
    this.unreadBytes += bytes;
    this.start(id, request, 'readahead').result.catch((error: unknown) => {
      this.markRead(id);
      this.stats.readaheadFailures++;
      this.options.logger.debug({ key: request.key, start: request.start, end: request.end, err: error }, 'readahead fetch failed; a read of that range will fetch it again');
    });
  }

  /**
   * Drops a cached range its reader is done with (a sequential stream has passed it), so that its buffer is reused
   * for the stream's next block instead of a fresh one: a stream then holds its readahead window, not the whole
   * cache. The kernel keeps the pages it read, so re-reads of the same file rarely come back here.
   */
  release(request: Omit<BlockRequest, 'signal' | 'objectSize'>): void {
    const id = cacheIdOf(request);
    const cached = this.lru.peek(id);
    if (!cached) return;
    this.markRead(id);
    this.lru.delete(id);
    this.stats.released++;
    // Through the pool's quarantine, like an eviction: a reply holding a view into it may still be on its way.
    this.evicted.push(cached.data);
    this.recycleEvicted();
  }

  /** Resolves once no fetch is in flight or queued, including those started while it waited (tests, and unmount). */
  async idle(): Promise<void> {
    // The entries leave inFlight in handlers attached before these, so each round sees the ones still running.
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()].map((entry) => entry.scheduled.result));
  }

  /** Forgets every cached range (fetches in flight still complete and are cached). */
  clear(): void {
    this.lru.clear();
    this.pool?.trim(0);
    for (const id of this.unread.keys()) if (!this.inFlight.has(id)) this.markRead(id);
  }

  /** Takes a range out of the unread prefetches; true if it was one. */
  private markRead(id: string): boolean {
    const bytes = this.unread.get(id);
    if (bytes === undefined) return false;
    this.unread.delete(id);
    this.unreadBytes -= bytes;
    return true;
  }

  private start(id: string, request: Omit<BlockRequest, 'signal'>, priority: FetchPriority): ScheduledFetch<Buffer> {
    if (priority === 'demand') this.stats.demandFetches++;
    else this.stats.readaheadFetches++;
    const { signal } = this.options;
    const scheduled = this.limiter.schedule(priority, () => this.fetch(request, signal));
    const entry: InFlight = { scheduled };
    this.inFlight.set(id, entry);
    // The in-flight entry is replaced by the cached bytes in the same turn the fetch settles, so a
    // reader arriving in between finds one or the other and never starts a second fetch; a failure is
    // not cached, so the next reader tries again.
    scheduled.result.then(
      (data) => {
        if (this.inFlight.get(id) === entry) this.inFlight.delete(id);
        this.lru.set(id, { length: this.pool?.memoryOf(data) ?? data.length, data });
        this.recycleEvicted();
      },
      () => {
        if (this.inFlight.get(id) === entry) this.inFlight.delete(id);
      },
    );
    return scheduled;
  }

  /** One fetch through the fetcher, into a recycled buffer when the range is a whole block. */
  private async fetch(request: Omit<BlockRequest, 'signal'>, signal: AbortSignal | undefined): Promise<Buffer> {
    const bytes = request.end - request.start;
    const into = this.pool && bytes <= this.pool.bufferBytes ? this.pool.take(bytes) : undefined;
    const held = into ? (this.pool as BlockBufferPool).memoryOf(into) : bytes;
    this.fetchingBytes += held;
    this.trimPool();
    try {
      const data = await this.options.fetcher.fetch({ ...request, ...(signal && { signal }), ...(into && { into }) });
      // A fetcher may answer with its own buffer (a peer's, a fake's): the one it did not use goes back.
      if (into && data !== into) this.pool?.give(into);
      return data;
    } catch (error) {
      // A failed fetch's buffer was never handed to a reader: the fetcher has stopped writing into it.
      if (into) this.pool?.give(into);
      throw error;
    } finally {
      this.fetchingBytes -= held;
    }
  }

  /** Gives the buffers the last lru.set evicted back to the pool, within the memory bound. */
  private recycleEvicted(): void {
    const evicted = this.evicted;
    if (evicted.length === 0) return;
    this.evicted = [];
    this.trimPool();
    for (const buffer of evicted) this.pool?.give(buffer);
  }

  /** Lets free buffers take only what the cache and the fetches running now leave of the memory bound. */
  private trimPool(): void {
    if (!this.pool) return;
    const bound = this.options.capacityBytes + this.options.maxConcurrentFetches * this.pool.bufferBytes;
    this.pool.trim(bound - this.lru.bytes - this.fetchingBytes);
  }
}
