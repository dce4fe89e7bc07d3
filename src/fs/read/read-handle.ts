// An open regular file that is only read: serves FUSE READs from the mount's block cache, with
// readahead while the reader streams and only the needed bytes while it seeks around.
import type { Logger } from '../../log/logger';
import { isObjectStoreError } from '../../objectstore/errors';
import { Errno, errnoOf } from '../errno';
import { FuseError } from '../fuse/operations';
import type { OpenFile } from '../open-file';
import { alignSpan, blockCount, blockIndexOf, blockSpan, blocksOf, clipToObject, type ByteRange } from '../../blocks/block-math';
import type { BlockCache } from './block-cache';
import type { ReadPathConfig } from '../../config/read-path';
import { Readahead } from './readahead';

/** The settings a ReadHandle uses, a subset of ReadPathConfig. */
export type ReadHandleConfig = Pick<
  ReadPathConfig,
  'blockSizeBytes' | 'randomReadUnitBytes' | 'readaheadInitialBlocks' | 'readaheadMaxBlocks' | 'sequentialSlackBytes' | 'sequentialThresholdBytes' | 'keepBehindBytes'
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
  /**
   * Whether this handle is the only one open on its object version now (ReadPath counts them). Only then are the
   * blocks a sequential stream has passed given back to the pool at once: another reader of the same version (readers
   * sharing a node's mount, O_DIRECT ones the kernel keeps no pages for) may still need them. (A range fetched
   * exactly for one random read goes back whatever: another reader wanting those very bytes joins the fetch while it
   * runs, and seldom comes later.) Absent: never alone.
   */
  alone?: () => boolean;
  /** Hears the handle's release (ReadPath's count of open handles). */
  onRelease?: () => void;
  config: ReadHandleConfig;
  logger: Logger;
}

/** One piece of a read: the bytes wanted (range) out of one cached range (fetched). */
interface Piece {
  range: ByteRange;
  fetched: ByteRange;
  data: Promise<Buffer>;
  /** Fetched exactly for this read (a random read of at least one unit): released from the cache once read. */
  once: boolean;
}

/** The wanted bytes of a piece, as a view into the cached range's buffer. */
function viewOf(piece: Piece, bytes: Buffer): Buffer {
  return bytes.subarray(piece.range.start - piece.fetched.start, piece.range.end - piece.fetched.start);
}

/** Bytes of a page: the kernel's READ requests are page-aligned, so an exact range is whole pages anyway. */
const PAGE_BYTES = 4096;


/**
 * What a random read of `part` fetches: a piece of at least one unit exactly (whole pages), since rounding a
 * 1 MiB read out to 256 KiB units fetched 1.17× the bytes read through a real mount (bench/run.js random-read,
 * 313 GETs of 300 MiB for 256 reads); a smaller piece rounded out to the unit, so that neighbouring small reads
 * (mmap faults) share one GET.
 */
function randomRange(part: ByteRange, block: ByteRange, unit: number): ByteRange {
  return alignSpan(part, part.end - part.start >= unit ? PAGE_BYTES : unit, block);
}

/** A read-only open file over one object version; its own readahead detector, the mount's shared cache. */
export class ReadHandle implements OpenFile {
  readonly size: number;
  private readonly readahead: Readahead;
  private readonly lastBlock: number;
  private released = false;
  /** Blocks below this index were released by releasePassed. */
  private releasedBelow = 0;

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
      const whole = decision.sequential || cache.holds(blockRequest);
      const range = whole ? block : randomRange(part, block, config.randomReadUnitBytes);
      // Such a range serves this read only (the kernel keeps the pages): its buffer goes back to the pool at once.
      const once = !whole && part.end - part.start >= config.randomReadUnitBytes;
      pieces.push({ range: part, fetched: range, data: cache.read({ key, etag, objectSize: this.size, ...range }), once });
    }
    if (decision.sequential && this.options.alone?.()) this.releasePassed(wanted.start);
    // Prefetches are queued after this read's own fetches, and behind every demand fetch of the mount.
    for (let index = last + 1; index <= Math.min(last + decision.windowBlocks, this.lastBlock); index++) {
      cache.prefetch({ key, etag, objectSize: this.size, ...blockSpan(index, config.blockSizeBytes, this.size) });
    }

    try {
      const only = pieces.length === 1 ? pieces[0] : undefined;
      // A view into the cached block, no copy: the reply is written before the block's buffer can be
      // recycled (see BlockCache.read).
      if (only) {
        const bytes = await only.data;
        this.done(only);
        return viewOf(only, bytes);
      }
      // Several blocks: each piece is copied out as soon as its block arrives, not once all have, since
      // an earlier block could be evicted and its buffer recycled while a later one is still on its way.
      const out = Buffer.allocUnsafe(wanted.end - wanted.start);
      await Promise.all(pieces.map((piece) => piece.data.then((bytes) => {
        viewOf(piece, bytes).copy(out, piece.range.start - wanted.start);
        this.done(piece);
      })));
      return out;
    } catch (error) {
      throw this.failure(error);
    }
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
    if (!this.released) this.options.onRelease?.();
    this.released = true;
  }

  /** Releases a piece's range when it was fetched for this read only; its bytes are read in this continuation, before the pool can reuse them. */
  private done(piece: Piece): void {
    if (piece.once) this.options.cache.release({ key: this.options.key, etag: this.options.etag, ...piece.fetched });
  }

  /**
   * Releases the blocks a sequential stream reading at `offset` has passed: its own (from the block it started in)
   * that end more than the sequential slack (the kernel's readahead requests arrive that much out of order) and
   * keepBehindBytes before it.
   */
  private releasePassed(offset: number): void {
    const { cache, config, key, etag } = this.options;
    const passed = blockIndexOf(Math.max(0, offset - config.sequentialSlackBytes - config.keepBehindBytes), config.blockSizeBytes) - 1;
    // Only blocks of this stream: from where it started (another reader may be using those before it).
    const first = Math.max(this.releasedBelow, blockIndexOf(Math.max(0, this.readahead.start), config.blockSizeBytes));
    for (let index = first; index <= passed; index++) {
      cache.release({ key, etag, ...blockSpan(index, config.blockSizeBytes, this.size) });
    }
    this.releasedBelow = Math.max(this.releasedBelow, passed + 1);
  }

  /** The FuseError for a failed fetch; the block fetcher has logged the cause. */
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
