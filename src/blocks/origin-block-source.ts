// The origin fill: block ranges fetched from the object store itself, one ranged If-Match GET each, bounded in
// time and retried as its OriginFetchPolicy says. The filesystem's read path and the cache server each make their own.
import type { Readable } from 'node:stream';
import type { Logger } from '../log/logger';
import { ObjectStoreError, isObjectStoreError } from '../objectstore/errors';
import type { ObjectStore } from '../objectstore/store';
import { backoffDelay } from '../util/backoff';
import { sleep as defaultSleep, type Sleep } from '../util/sleep';
import type { BlockRequest, BlockSource } from './block-source';
import type { OriginFetchPolicy } from './origin-fetch-policy';

/** Counters of an OriginBlockSource, plain numbers that become metrics. */
export interface OriginStats {
  requests: number;
  bytes: number;
  retries: number;
  failures: number;
}

/** A fetch that timed out; retried like Unavailable. */
class FetchTimeout extends ObjectStoreError {
  constructor(message: string) {
    super('Unavailable', message);
  }
}

/**
 * Fetches block ranges from the object store with one ranged, If-Match GET each: a bounded time per
 * try, bounded retries with jittered exponential backoff for Unavailable, timeouts and broken bodies.
 * Anything else (the object changed, was deleted, access refused) fails at once.
 */
export class OriginBlockSource implements BlockSource {
  /** Counters since creation. */
  readonly stats: OriginStats = { requests: 0, bytes: 0, retries: 0, failures: 0 };

  constructor(
    private readonly store: ObjectStore,
    private readonly policy: OriginFetchPolicy,
    private readonly logger: Logger,
    private readonly sleep: Sleep = defaultSleep,
  ) {}

  async fetch(request: BlockRequest): Promise<Buffer> {
    const { key, start, end, signal } = request;
    for (let attempt = 1; ; attempt++) {
      try {
        const data = await this.fetchOnce(request);
        this.stats.bytes += data.length;
        return data;
      } catch (error) {
        if (signal?.aborted) throw signal.reason ?? error;
        if (!isRetryable(error) || attempt >= this.policy.fetchAttempts) {
          this.stats.failures++;
          if (isObjectStoreError(error, 'PreconditionFailed', 'NotFound')) {
            this.logger.warn({ key, etag: request.etag, start, end, code: error.code }, 'the object changed or was deleted since it was opened: reads of this handle fail with EIO; open the file again to read the new version');
          } else {
            this.logger.warn({ key, start, end, attempts: attempt, err: error }, 'fetching a block from the object store failed');
          }
          throw error;
        }
        // Full jitter: concurrent readers that failed together do not retry together.
        const delay = backoffDelay({ baseMs: this.policy.retryBaseDelayMs, maxMs: this.policy.retryMaxDelayMs, jitter: 'full' }, attempt);
        this.stats.retries++;
        this.logger.debug({ key, start, end, attempt, delayMs: delay, err: error }, 'block fetch failed; retrying');
        await this.sleep(delay, signal);
      }
    }
  }

  /** One GET, its body read into request.into (or one buffer allocated up front), within fetchTimeoutMs. */
  private async fetchOnce(request: BlockRequest): Promise<Buffer> {
    const { key, etag, start, end } = request;
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new FetchTimeout(`GET of bytes ${start}-${end} of "${key}" in ${this.store.location} took more than ${this.policy.fetchTimeoutMs} ms`)),
      this.policy.fetchTimeoutMs,
    );
    const signal = request.signal ? AbortSignal.any([request.signal, timeout.signal]) : timeout.signal;
    try {
      this.stats.requests++;
      const options = { range: { start, end }, ...(etag !== '' && { ifMatch: etag }), signal };
      const into = request.into ?? Buffer.allocUnsafe(end - start);
      // The store's direct path, when it has one, reads the body into the buffer without a stream.
      if (this.store.getInto && (await this.store.getInto(key, into, options))) return into;
      const result = await this.store.get(key, options);
      return await readExactly(result.body, into, signal, `bytes ${start}-${end} of "${key}"`);
    } catch (error) {
      // A timeout surfaces as whatever the store threw when its signal aborted; report the timeout itself.
      if (timeout.signal.aborted && !request.signal?.aborted) throw timeout.signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Unavailable (the store's retries gave up, or our timeout), or a failure while the body streamed (reset, truncation). */
function isRetryable(error: unknown): boolean {
  if (error instanceof ObjectStoreError) return error.code === 'Unavailable';
  return true;
}

/**
 * Reads `body` into `data`, which it must fill exactly; a body of any other length is an Unavailable error.
 * The chunks are copied as they come (one copy, socket buffer to block buffer), and none after it settles.
 */
async function readExactly(body: Readable, data: Buffer, signal: AbortSignal, what: string): Promise<Buffer> {
  const length = data.length;
  let filled = 0;
  const onAbort = () => body.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of body as AsyncIterable<Buffer | string>) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (filled + bytes.length > length) throw new ObjectStoreError('Unavailable', `${what}: the store sent more than the ${length} bytes asked for`);
      bytes.copy(data, filled);
      filled += bytes.length;
    }
  } catch (error) {
    body.destroy();
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (filled !== length) throw new ObjectStoreError('Unavailable', `${what}: the body ended after ${filled} of ${length} bytes`);
  return data;
}
