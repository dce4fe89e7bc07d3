// An open regular file that is only read: serves FUSE READs from the mount's block cache, with
// readahead while the reader streams and only the needed bytes while it seeks around.
import type { Logger } from '../../log/logger';
import { isObjectStoreError } from '../../objectstore/errors';
import { Errno, errnoOf } from '../errno';
import { FuseError } from '../fuse/operations';
import type { OpenFile } from '../open-file';
import { alignSpan, blockCount, blockSpan, blocksOf, clipToObject, type Span } from './block-math';
import type { BlockCache } from './block-cache';
import type { ReadPathConfig } from './config';
import { Readahead } from './readahead';

/** The settings a ReadHandle uses, a subset of ReadPathConfig. */
export type ReadHandleConfig = Pick<
  ReadPathConfig,
  'blockSizeBytes' | 'randomReadUnitBytes' | 'readaheadInitialBlocks' | 'readaheadMaxBlocks' | 'sequentialSlackBytes' | 'sequentialThresholdBytes'
>;

/** What createReadHandle needs: the object version opened, and the mount's cache. */
export interface ReadHandleOptions {
  /** The object's key in the bucket (prefix included). */
  key: string;
  /** The ETag seen at open: every byte served comes from this version, or the read fails with EIO. */
  etag: string;
  /** The object's size at open. */
  size: number;
  /** The mount's cache (ReadPath.cache), shared by all handles. */
  cache: BlockCache;
  config: ReadHandleConfig;
  logger: Logger;
}

/** One piece of a read: the bytes to copy out of one cached range. */
interface Piece {
  range: Span;
  data: Promise<Buffer>;
}

/** A read-only open file over one object version; its own readahead detector, the mount's shared cache. */
export class ReadHandle implements OpenFile {
  readonly size: number;
  private readonly readahead: Readahead;
  private readonly lastBlock: number;
  private released = false;

  constructor(private readonly options: ReadHandleOptions) {
    this.size = options.size;
    this.readahead = new Readahead(options.config);
    this.lastBlock = blockCount(options.size, options.config.blockSizeBytes) - 1;
  }

  async read(offset: number, size: number): Promise<Buffer> {
    if (this.released) throw new FuseError(Errno.EBADF, `read of ${this.options.key} after release`);
    const wanted = clipToObject(offset, size, this.size);
    if (!wanted) return Buffer.alloc(0);
    const { cache, config, key, etag } = this.options;
    const decision = this.readahead.next(wanted.start, wanted.end - wanted.start);
    const { first, last } = blocksOf(wanted, config.blockSizeBytes);

    const pieces: Piece[] = [];
    for (let index = first; index <= last; index++) {
      const block = blockSpan(index, config.blockSizeBytes, this.size);
      const part = { start: Math.max(wanted.start, block.start), end: Math.min(wanted.end, block.end) };
      // Streaming: whole aligned blocks, the unit readahead and other readers share. Seeking: the
      // whole block only if it is already here or on its way, else just the wanted bytes, rounded.
      const blockRequest = { key, etag, ...block };
      const range = decision.sequential || cache.holds(blockRequest) ? block : alignSpan(part, config.randomReadUnitBytes, block);
      pieces.push({ range: part, data: cache.read({ key, etag, ...range }).then((bytes) => bytes.subarray(part.start - range.start, part.end - range.start)) });
    }
    // Prefetches are queued after this read's own fetches, and behind every demand fetch of the mount.
    for (let index = last + 1; index <= Math.min(last + decision.windowBlocks, this.lastBlock); index++) {
      cache.prefetch({ key, etag, ...blockSpan(index, config.blockSizeBytes, this.size) });
    }

    let parts: Buffer[];
    try {
      parts = await Promise.all(pieces.map((piece) => piece.data));
    } catch (error) {
      throw this.failure(error);
    }
    if (parts.length === 1) return parts[0] as Buffer; // a view into the cached block: no copy
    const out = Buffer.allocUnsafe(wanted.end - wanted.start);
    let at = 0;
    for (const part of parts) at += part.copy(out, at);
    return out;
  }

  async write(): Promise<number> {
    throw new FuseError(Errno.EBADF, `${this.options.key} is open for reading only`);
  }

  async flush(): Promise<void> {
    // Nothing buffered: a read handle holds no data of its own.
  }

  async fsync(): Promise<void> {
    // Nothing buffered: a read handle holds no data of its own.
  }

  async release(): Promise<void> {
    // Blocks stay in the mount's cache for other readers; prefetches already queued still complete.
    this.released = true;
  }

  /** The FuseError for a failed fetch; the block source has logged the cause. */
  private failure(error: unknown): FuseError {
    if (error instanceof FuseError) return error;
    // The object changed or vanished under an open handle: not "no such file", the file was opened fine.
    const errno = isObjectStoreError(error, 'NotFound', 'PreconditionFailed') ? Errno.EIO : errnoOf(error);
    this.options.logger.debug({ key: this.options.key, errno, err: error }, 'read failed');
    return new FuseError(errno, `read of ${this.options.key}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** Opens a read handle over one object version, served from the mount's shared block cache. */
export function createReadHandle(options: ReadHandleOptions): ReadHandle {
  return new ReadHandle(options);
}
