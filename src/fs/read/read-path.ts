// The read path of one mount: the objects every open file shares (block fetcher, block cache), and
// the factory of read handles the filesystem calls at open(2).
import type { Logger } from '../../log/logger';
import type { ObjectStore } from '../../objectstore/store';
import { BlockCache } from './block-cache';
import type { BlockFetcher } from '../../blocks/block-fetcher';
import { OriginFetcher } from '../../blocks/origin-fetcher';
import type { ReadPathConfig } from '../../config/read-path';
import { createReadHandle, type ReadHandle } from './read-handle';

/** Options of a ReadPath. */
export interface ReadPathOptions {
  store: ObjectStore;
  config: ReadPathConfig;
  logger: Logger;
  /**
   * Where blocks come from, given the object store's fetcher; default that fetcher itself. The cluster cache
   * passes one that asks each block's owner and falls back to the origin.
   */
  fetcher?: (origin: OriginFetcher) => BlockFetcher;
}

/** The version of an object an open(2) saw. */
export interface OpenedObject {
  key: string;
  etag: string;
  size: number;
}

/** One per mount: builds the shared block cache and hands out a ReadHandle per open file. */
export class ReadPath {
  /** The block cache every handle of the mount shares. */
  readonly cache: BlockCache;
  /** The object store's fetcher, whose counters show origin GETs, bytes and retries. */
  readonly origin: OriginFetcher;
  private readonly closing = new AbortController();
  /** Read handles open now, by object version (ETag and key). */
  private readonly openHandles = new Map<string, number>();

  constructor(private readonly options: ReadPathOptions) {
    const { config, logger } = options;
    this.origin = new OriginFetcher(options.store, config, logger);
    this.cache = new BlockCache({
      fetcher: options.fetcher ? options.fetcher(this.origin) : this.origin,
      capacityBytes: config.cacheBytes,
      maxConcurrentFetches: config.maxConcurrentFetches,
      readaheadBudgetBytes: Math.floor(config.cacheBytes * config.readaheadCacheShare),
      blockSizeBytes: config.blockSizeBytes,
      logger,
      signal: this.closing.signal,
    });
  }

  /** A read handle for one open(2) of `object`. */
  open(object: OpenedObject): ReadHandle {
    // Handles open per object version: a handle alone on its version gives back what it has read at once (see ReadHandleOptions.alone).
    const version = `${object.etag}:${object.key}`;
    this.openHandles.set(version, (this.openHandles.get(version) ?? 0) + 1);
    return createReadHandle({
      ...object,
      cache: this.cache,
      config: this.options.config,
      logger: this.options.logger,
      alone: () => this.openHandles.get(version) === 1,
      onRelease: () => {
        const left = (this.openHandles.get(version) ?? 1) - 1;
        if (left > 0) this.openHandles.set(version, left);
        else this.openHandles.delete(version);
      },
    });
  }

  /** At unmount: aborts fetches in flight (their reads fail with EIO) and drops the cache. */
  close(): void {
    const { cache, origin } = this;
    this.options.logger.info({ origin: origin.stats, cache: cache.stats, buffers: cache.bufferStats }, 'read path closing: counters since the mount');
    this.closing.abort(new Error('the mount is closing'));
    this.cache.clear();
  }
}
