// Per open file: is the reader streaming through the file, and how far ahead should we fetch.
import { blockIndexOf } from '../../blocks/block-math';

/** Settings of a Readahead (see ReadPathConfig for the defaults). */
export interface ReadaheadOptions {
  blockSizeBytes: number;
  readaheadInitialBlocks: number;
  readaheadMaxBlocks: number;
  sequentialSlackBytes: number;
  sequentialThresholdBytes: number;
}

/** What one read should do: fetch whole blocks and prefetch `windowBlocks` beyond (sequential), or only what it needs. */
export interface ReadaheadDecision {
  sequential: boolean;
  /** Blocks to prefetch after the last block of this read; 0 for random access. */
  windowBlocks: number;
}

/**
 * A sequential-access detector with a growing window, one per open file (so several processes
 * streaming one file at different offsets each keep their own). A read continues the current
 * stream when it lands within sequentialSlackBytes of where the stream has reached (either way: the
 * kernel's parallel readahead requests arrive slightly out of order); anything else is a seek and
 * starts a new stream with no readahead. A stream is sequential once it started at offset 0 or
 * has read sequentialThresholdBytes; its window then starts at readaheadInitialBlocks and doubles
 * each time the stream enters a new block, up to readaheadMaxBlocks.
 */
export class Readahead {
  /** Where the current stream started. */
  private streamStart = -1;
  /** The furthest byte the current stream has read (exclusive). */
  private frontier = -1;
  /** Bytes the current stream has read. */
  private streamBytes = 0;
  /** The last block the window grew at. */
  private grownAtBlock = -1;
  private window = 0;

  constructor(private readonly options: ReadaheadOptions) {}

  /** Where the current stream started (-1 before the first read). */
  get start(): number {
    return this.streamStart;
  }

  /** Records a read of [offset, offset + size) and says how to serve it. */
  next(offset: number, size: number): ReadaheadDecision {
    const { options } = this;
    const end = offset + size;
    const continues = this.frontier >= 0 && Math.abs(offset - this.frontier) <= options.sequentialSlackBytes;
    if (continues) {
      this.frontier = Math.max(this.frontier, end);
      this.streamBytes += size;
    } else {
      this.streamStart = offset;
      this.frontier = end;
      this.streamBytes = size;
      this.window = 0;
      this.grownAtBlock = -1;
    }
    // Bytes read, not the span covered: random reads that happen to land near each other add up slowly.
    const sequential = this.streamStart === 0 || this.streamBytes >= options.sequentialThresholdBytes;
    if (!sequential || options.readaheadMaxBlocks === 0) return { sequential, windowBlocks: 0 };
    const block = blockIndexOf(Math.max(this.frontier - 1, 0), options.blockSizeBytes);
    if (this.window === 0) {
      this.window = Math.min(options.readaheadInitialBlocks, options.readaheadMaxBlocks);
      this.grownAtBlock = block;
    } else if (block > this.grownAtBlock) {
      this.window = Math.min(this.window * 2 ** (block - this.grownAtBlock), options.readaheadMaxBlocks);
      this.grownAtBlock = block;
    }
    return { sequential, windowBlocks: this.window };
  }
}
