// Warm-up: loads every block of every object under a prefix into the cache server that owns it, with
// progress. Knows nothing of the CLI or HTTP: `granary warmup` and the server's POST /v1/warmup both call it.
import { setMaxListeners } from 'node:events';
import { DEFAULT_WARMUP_CONCURRENCY } from '../config/warmup';
import type { ListPage, ObjectInfo, ObjectStore } from '../objectstore/store';
import { backoffDelay } from '../util/backoff';
import { forEachLimited } from '../util/for-each-limited';
import { sleepUnlessAborted } from '../util/sleep';
import { blockCount } from '../blocks/block-math';
import { blockId, blockRange, type BlockRef } from './block';
import { PeerError } from './peer-client';
import type { LoadResult } from './protocol';
import type { PeerPicker } from './ring';

/** Tries per block by default before it is counted as failed (only failures isRetryableLoadFailure accepts are tried again). */
export const DEFAULT_LOAD_ATTEMPTS = 3;

/** Wait before the first retry of a block by default; doubled before each further retry. */
export const DEFAULT_RETRY_DELAY_MS = 200;

/** How often progress is reported by default while warming (and once more at the end). */
export const DEFAULT_PROGRESS_INTERVAL_MS = 250;

/** Keys per listing page by default (S3's maximum). */
export const DEFAULT_LIST_PAGE_SIZE = 1000;

/** How many block failures the summary describes; the rest are only counted. */
export const MAX_REPORTED_FAILURES = 10;

/** What an operator is told when the ring is empty. */
export const NO_CACHE_SERVER_MESSAGE = 'no cache server is ready: check --cache-peers / the cache pods';

/** Where a warmed block's bytes came from: origin (fetched now) or ram/disk (already warm). */
export type WarmupServedFrom = LoadResult['servedFrom'];

/** Asks cache server `owner` to make sure block `ref` is cached (POST /v1/load). */
export type LoadBlock = (owner: string, ref: BlockRef, signal: AbortSignal) => Promise<LoadResult>;

/** What warmPrefix() needs: where to list, how blocks are named, the ring and the way to load a block. */
export interface WarmupOptions {
  store: ObjectStore;
  /** Key prefix to warm: every object under it (at any depth). */
  prefix: string;
  /** The object store endpoint, in endpointIdentity() form, as block ids are made with it. */
  endpoint: string;
  bucket: string;
  blockSize: number;
  /** The current ring; asked for every block (and every retry), since membership may change while warming. */
  picker: () => PeerPicker;
  load: LoadBlock;
  /** Blocks loading at once; default DEFAULT_WARMUP_CONCURRENCY (16). */
  concurrency?: number;
  /** Stops the warm-up: warmPrefix() then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called with the progress every progressIntervalMs while warming, and once at the end (also on failure). */
  onProgress?: (progress: WarmupProgress) => void;
  /** Default DEFAULT_PROGRESS_INTERVAL_MS (250 ms). */
  progressIntervalMs?: number;
  /** Tries per block; default DEFAULT_LOAD_ATTEMPTS (3). */
  attempts?: number;
  /** Default DEFAULT_RETRY_DELAY_MS (200 ms), doubled before each further retry. */
  retryDelayMs?: number;
  /** Default DEFAULT_LIST_PAGE_SIZE (1000). */
  listPageSize?: number;
  /** The clock for elapsed time and rate; default Date.now. */
  now?: () => number;
}

/** Where a warm-up stands. Bytes and blocks are counted from the listing (object sizes), not from the servers' answers. */
export interface WarmupProgress {
  /** Objects found to warm so far (directory markers and empty objects are not counted). */
  objectsListed: number;
  /** Objects listed without an ETag: they cannot be cached, so they are not warmed. */
  objectsSkipped: number;
  /** Objects whose every block has been loaded or has failed. */
  objectsDone: number;
  /** Whether the listing has reached its last page (only then are the totals final). */
  listingComplete: boolean;
  /** Bytes of the objects listed so far. */
  bytesListed: number;
  /** Bytes of the blocks loaded. */
  bytesDone: number;
  /** Bytes of the blocks that failed. */
  bytesFailed: number;
  /** Bytes loaded, by where the owner found them. */
  bytesFrom: Record<WarmupServedFrom, number>;
  /** Blocks of the objects listed so far. */
  blocksListed: number;
  blocksDone: number;
  failedBlocks: number;
  elapsedMs: number;
  /** Bytes loaded per second since the start. */
  bytesPerSecond: number;
  /** Estimated milliseconds left; only once the listing is complete and something has been loaded. */
  etaMs?: number;
}

/** One block that could not be loaded after every try. */
export interface BlockFailure {
  key: string;
  index: number;
  /** The cache server asked last. */
  owner: string;
  message: string;
}

/** The end of a warm-up: the final progress and the first MAX_REPORTED_FAILURES failures. */
export interface WarmupSummary extends WarmupProgress {
  failures: BlockFailure[];
}

/** One block to load, and the object it belongs to (to count the object done with its last block). */
interface PendingBlock {
  ref: BlockRef;
  bytes: number;
  object: { blocksLeft: number };
}

/** Counters that snapshot() turns into a WarmupProgress (which adds the time-derived fields). */
type Tally = Omit<WarmupProgress, 'elapsedMs' | 'bytesPerSecond' | 'etaMs'>;

/**
 * Whether a failed load is worth another try: the owner could not be reached or was not ready (refused, reset, no
 * answer in time, 503), so it has filled nothing that failed. Any other answer is final: a 502 says the owner's fill
 * from the object store failed after the store's own retries, which a second load would only repeat; a 4xx says the
 * request itself is wrong (token, endpoint, object changed).
 */
export function isRetryableLoadFailure(error: unknown): boolean {
  if (!(error instanceof PeerError)) return false;
  if (error.status !== undefined) return error.status === 503;
  return error.code === 'Unavailable' || error.code === 'TimedOut';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Objects under `prefix`, page after page; `onPage` sees each page as it arrives. The next page is requested as
 * soon as one arrives, so listing overlaps loading, while at most two pages are held at once.
 */
async function* listObjects(
  store: ObjectStore,
  prefix: string,
  pageSize: number,
  signal: AbortSignal,
  onPage: (objects: readonly ObjectInfo[], last: boolean) => void,
): AsyncGenerator<ObjectInfo> {
  type Settled = { page: ListPage } | { error: unknown };
  // Settled up front: a prefetched page that fails while the current one is being loaded must not be an
  // unhandled rejection; its error is thrown when its turn comes.
  const request = (continuationToken?: string): Promise<Settled> =>
    store
      .list({ prefix, maxKeys: pageSize, ...(continuationToken !== undefined && { continuationToken }) }, signal)
      .then(
        (page) => {
          onPage(page.objects, page.nextToken === undefined);
          return { page };
        },
        (error: unknown) => ({ error }),
      );
  let next: Promise<Settled> | undefined = request();
  while (next) {
    const settled: Settled = await next;
    if ('error' in settled) throw settled.error;
    const page: ListPage = settled.page;
    next = page.nextToken !== undefined ? request(page.nextToken) : undefined;
    yield* page.objects;
  }
}

/** Whether an object has bytes to warm: not a directory marker, not empty. */
function hasBlocks(object: ObjectInfo): boolean {
  return !object.key.endsWith('/') && object.size > 0;
}

/**
 * Loads every block of every object under the prefix into its owner on the ring, `concurrency` blocks at a
 * time, while the listing goes on. A block whose owner could not be reached or was not ready is tried again
 * (asking the ring again, see isRetryableLoadFailure) and, after the last try or any other failure, counted as
 * failed: the others are still loaded. Rejects when the ring has no member (no
 * cache server would keep anything), when the listing fails, or with the signal's reason when aborted.
 */
export async function warmPrefix(options: WarmupOptions): Promise<WarmupSummary> {
  const concurrency = options.concurrency ?? DEFAULT_WARMUP_CONCURRENCY;
  const attempts = options.attempts ?? DEFAULT_LOAD_ATTEMPTS;
  const retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  const now = options.now ?? Date.now;
  if (!(Number.isInteger(concurrency) && concurrency > 0)) throw new Error(`warm-up concurrency must be a positive integer, got ${concurrency}`);
  if (!(Number.isInteger(attempts) && attempts > 0)) throw new Error(`warm-up attempts must be a positive integer, got ${attempts}`);
  if (!(Number.isInteger(options.blockSize) && options.blockSize > 0)) throw new Error(`block size must be a positive integer, got ${options.blockSize}`);

  const started = now();
  const tally: Tally = {
    objectsListed: 0,
    objectsSkipped: 0,
    objectsDone: 0,
    listingComplete: false,
    bytesListed: 0,
    bytesDone: 0,
    bytesFailed: 0,
    bytesFrom: { origin: 0, ram: 0, disk: 0 },
    blocksListed: 0,
    blocksDone: 0,
    failedBlocks: 0,
  };
  const failures: BlockFailure[] = [];

  const snapshot = (): WarmupProgress => {
    const elapsedMs = Math.max(0, now() - started);
    const bytesPerSecond = elapsedMs > 0 ? (tally.bytesDone * 1000) / elapsedMs : 0;
    const bytesLeft = tally.bytesListed - tally.bytesDone - tally.bytesFailed;
    const etaMs = !tally.listingComplete ? undefined : bytesLeft <= 0 ? 0 : bytesPerSecond > 0 ? (bytesLeft / bytesPerSecond) * 1000 : undefined;
    return { ...tally, bytesFrom: { ...tally.bytesFrom }, elapsedMs, bytesPerSecond, ...(etaMs !== undefined && { etaMs }) };
  };

  // Stops the pool, every load and the listing: on the caller's abort or on a fatal error.
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  // Every load in flight (or retry waiting) and the listing listen to it: more than Node's default 10 is no leak.
  setMaxListeners(2 * concurrency + 2, signal);
  let fatal: { error: unknown } | undefined;
  const failAll = (error: unknown): void => {
    fatal ??= { error };
    stop.abort(error);
  };

  const countListed = (objects: readonly ObjectInfo[], last: boolean): void => {
    for (const object of objects) {
      if (!hasBlocks(object)) continue;
      if (object.etag === '') {
        tally.objectsSkipped++;
        continue;
      }
      tally.objectsListed++;
      tally.bytesListed += object.size;
      tally.blocksListed += blockCount(object.size, options.blockSize);
    }
    if (last) tally.listingComplete = true;
  };

  const { endpoint, bucket, blockSize } = options;
  async function* pendingBlocks(): AsyncGenerator<PendingBlock> {
    const objects = listObjects(options.store, options.prefix, options.listPageSize ?? DEFAULT_LIST_PAGE_SIZE, signal, countListed);
    try {
      for await (const object of objects) {
        if (!hasBlocks(object) || object.etag === '') continue;
        const count = blockCount(object.size, blockSize);
        const state = { blocksLeft: count };
        for (let index = 0; index < count; index++) {
          const ref: BlockRef = { endpoint, bucket, key: object.key, etag: object.etag, objectSize: object.size, index, blockSize };
          const range = blockRange(ref);
          yield { ref, bytes: range.end - range.start, object: state };
        }
      }
    } catch (error) {
      // A failed listing ends the warm-up at once: the loads in flight are aborted, not waited for.
      if (!signal.aborted) failAll(error);
    }
  }

  const finish = (block: PendingBlock): void => {
    block.object.blocksLeft--;
    if (block.object.blocksLeft === 0) tally.objectsDone++;
  };

  const warmBlock = async (block: PendingBlock): Promise<void> => {
    const id = blockId(block.ref);
    let owner = '';
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (signal.aborted) return;
      const picked = options.picker().pickPeer(id);
      if (picked === undefined) throw new Error(NO_CACHE_SERVER_MESSAGE);
      owner = picked;
      try {
        const result = await options.load(owner, block.ref, signal);
        tally.blocksDone++;
        tally.bytesDone += block.bytes;
        tally.bytesFrom[result.servedFrom] += block.bytes;
        finish(block);
        return;
      } catch (error) {
        if (signal.aborted) return;
        lastError = error;
        if (!isRetryableLoadFailure(error)) break;
      }
      if (attempt < attempts) await sleepUnlessAborted(backoffDelay({ baseMs: retryDelayMs, maxMs: Infinity }, attempt), signal);
    }
    if (signal.aborted) return;
    tally.failedBlocks++;
    tally.bytesFailed += block.bytes;
    if (failures.length < MAX_REPORTED_FAILURES) failures.push({ key: block.ref.key, index: block.ref.index, owner, message: messageOf(lastError) });
    finish(block);
  };

  // The pool shares one generator: it hands each block to exactly one load, and lists lazily.
  const blocks = pendingBlocks();
  const warmOrFail = async (block: PendingBlock): Promise<void> => {
    try {
      await warmBlock(block);
    } catch (error) {
      if (!signal.aborted) failAll(error);
    }
  };

  const report = options.onProgress;
  const timer = report ? setInterval(() => report(snapshot()), options.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS) : undefined;
  timer?.unref();
  try {
    await forEachLimited(blocks, concurrency, warmOrFail, { signal });
  } finally {
    clearInterval(timer);
    await blocks.return(undefined);
    report?.(snapshot());
  }
  if (fatal) throw fatal.error;
  if (options.signal?.aborted) throw options.signal.reason;
  return { ...snapshot(), failures };
}
