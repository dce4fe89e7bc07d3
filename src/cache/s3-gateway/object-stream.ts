// The bytes of one object version, in order, block by block through a BlockFetcher (the ring), a few blocks
// fetched ahead so that the owners' answers overlap the client's reading; never the whole object in memory.
import type { BlockFetcher } from '../../blocks/block-fetcher';
import { blockIndexOf } from '../../blocks/block-math';

/** One version of an object, as its HEAD named it. */
export interface ObjectVersion {
  key: string;
  etag: string;
  size: number;
}

/** How an object's range is read. */
export interface ObjectStreamOptions {
  fetcher: BlockFetcher;
  version: ObjectVersion;
  /** The bytes [start, end) to yield. */
  start: number;
  end: number;
  /** The cache's block size: one fetch per block, so that each is one cache entry on its owner. */
  blockSize: number;
  /** Blocks fetched ahead of the one being yielded. */
  readahead: number;
  /** Ends the reading (the client went away): fetches in flight are aborted. */
  signal?: AbortSignal;
}

/**
 * Yields the range's bytes, one piece per block (the first and last cut to the range). A failed fetch rejects the
 * iteration; stopping early (return, or the signal) aborts the fetches still in flight.
 */
export async function* objectBytes(options: ObjectStreamOptions): AsyncGenerator<Buffer> {
  const { fetcher, version, start, end, blockSize } = options;
  if (end <= start) return;
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const first = blockIndexOf(start, blockSize);
  const last = blockIndexOf(end - 1, blockSize);
  const inFlight: Array<Promise<Buffer>> = [];
  let next = first;
  const fetchNext = () => {
    const from = Math.max(start, next * blockSize);
    const to = Math.min(end, (next + 1) * blockSize);
    const fetched = fetcher.fetch({ key: version.key, etag: version.etag, objectSize: version.size, start: from, end: to, signal });
    // Rejections of fetches never awaited (the reading stopped first) are not unhandled.
    fetched.catch(() => undefined);
    inFlight.push(fetched);
    next++;
  };
  try {
    for (let index = first; index <= last; index++) {
      while (next <= last && inFlight.length < 1 + Math.max(0, options.readahead)) fetchNext();
      const piece = await (inFlight.shift() as Promise<Buffer>);
      yield piece;
    }
  } finally {
    stop.abort(new Error('the object stream stopped'));
  }
}
