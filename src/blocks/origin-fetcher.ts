// The origin fill: block ranges fetched from the object store itself, one store call each (a ranged If-Match read
// into the block buffer) within one deadline, its OriginFetchPolicy's. The store is the one layer that retries a
// GET: it alone knows which answers are transient (throttling, 5xx, resets, timeouts) and keeps the retry quota,
// so a fill never loops over it. The filesystem's read path and the cache server each make their own.
import type { Logger } from '../log/logger';
import { ObjectStoreError, isObjectStoreError } from '../objectstore/errors';
import type { ObjectStore } from '../objectstore/store';
import type { BlockRequest, BlockFetcher } from './block-fetcher';
import type { OriginFetchPolicy } from './origin-fetch-policy';

/** Counters of an OriginFetcher, plain numbers that become metrics. */
export interface OriginStats {
  /** GETs the store sent for fills, its retries included, as it counts them (1 for a call it could not count: aborted, or a store that never retries). */
  requests: number;
  bytes: number;
  /** Of those requests, the store's retries. */
  retries: number;
  /** Fills that failed. */
  failures: number;
}

/** A fill that did not finish within the policy's deadline. */
class FetchTimeout extends ObjectStoreError {
  constructor(message: string) {
    super('Unavailable', message);
  }
}

/**
 * Fetches block ranges from the object store with one store call each (ObjectStore.getInto: a ranged, If-Match
 * read whose retries, body included, are the store's), aborted when it takes longer than fetchTimeoutMs.
 */
export class OriginFetcher implements BlockFetcher {
  /** Counters since creation. */
  readonly stats: OriginStats = { requests: 0, bytes: 0, retries: 0, failures: 0 };

  constructor(
    private readonly store: ObjectStore,
    private readonly policy: OriginFetchPolicy,
    private readonly logger: Logger,
  ) {}

  /** Reads the range into request.into (or one buffer allocated up front) within fetchTimeoutMs, every try of the store included. */
  async fetch(request: BlockRequest): Promise<Buffer> {
    const { key, etag, start, end } = request;
    const { fetchTimeoutMs } = this.policy;
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new FetchTimeout(`reading bytes ${start}-${end} of "${key}" from ${this.store.location} took more than ${fetchTimeoutMs} ms (every try of the store included)`)),
      fetchTimeoutMs,
    );
    const signal = request.signal ? AbortSignal.any([request.signal, timeout.signal]) : timeout.signal;
    const into = request.into ?? Buffer.allocUnsafe(end - start);
    try {
      const read = await this.store.getInto(key, into, { range: { start, end }, ...(etag !== '' && { ifMatch: etag }), signal });
      this.count(read.attempts);
      this.stats.bytes += into.length;
      return into;
    } catch (error) {
      this.count(isObjectStoreError(error) ? (error.attempts ?? 1) : 1);
      if (request.signal?.aborted) throw request.signal.reason ?? error;
      this.stats.failures++;
      // A timeout surfaces as whatever the store threw when its signal aborted; report the timeout itself.
      const failure: unknown = timeout.signal.aborted ? timeout.signal.reason : error;
      if (isObjectStoreError(failure, 'PreconditionFailed', 'NotFound')) {
        this.logger.warn({ key, etag, start, end, code: failure.code }, 'the object changed or was deleted since it was opened: reads of this handle fail with EIO; open the file again to read the new version');
      } else {
        this.logger.warn({ key, start, end, err: failure }, 'fetching a block from the object store failed');
      }
      throw failure;
    } finally {
      clearTimeout(timer);
    }
  }

  private count(attempts: number): void {
    this.stats.requests += attempts;
    this.stats.retries += attempts - 1;
  }
}
