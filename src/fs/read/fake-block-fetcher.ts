// A test fake: a BlockFetcher over bytes in memory, with controllable latency and failures.
import type { BlockRequest, BlockFetcher } from '../../blocks/block-fetcher';

/** A BlockFetcher for unit tests: serves ranges of in-memory objects, records every call, waits `latencyMs`. Not for production use. */
export class FakeBlockFetcher implements BlockFetcher {
  /** Every fetch asked, in order. */
  readonly calls: BlockRequest[] = [];
  /** Fetches running now, and the most ever at once. */
  running = 0;
  maxRunning = 0;
  /** How long each fetch takes (ms). */
  latencyMs = 0;
  /** When set, a fetch rejects with what it returns (undefined: it succeeds). */
  failWith: ((request: BlockRequest) => Error | undefined) | undefined;

  constructor(private readonly objects: Map<string, Buffer> = new Map()) {}

  /** Adds or replaces an object. */
  put(key: string, data: Buffer): void {
    this.objects.set(key, data);
  }

  async fetch(request: BlockRequest): Promise<Buffer> {
    this.calls.push(request);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
      request.signal?.throwIfAborted();
      const failure = this.failWith?.(request);
      if (failure) throw failure;
      const data = this.objects.get(request.key);
      if (!data) throw new Error(`no object ${request.key} in the fake`);
      const bytes = data.subarray(request.start, request.end);
      if (!request.into) return Buffer.from(bytes);
      // Like the origin fetcher: fill the recycled buffer the cache lent, and answer with it.
      bytes.copy(request.into);
      return request.into;
    } finally {
      this.running--;
    }
  }
}
