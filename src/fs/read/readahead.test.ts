import { DEFAULT_READ_PATH_CONFIG } from '../../config/read-path';
import { Readahead, type ReadaheadOptions } from './readahead';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 4 * MiB;
const options: ReadaheadOptions = DEFAULT_READ_PATH_CONFIG; // 4 MiB blocks, window 1..8, slack 4 MiB, threshold 4 MiB

/** Reads [from, to) in `step` pieces and returns the window after each new block. */
function stream(readahead: Readahead, from: number, to: number, step: number): number[] {
  const windows: number[] = [];
  let lastBlock = -1;
  for (let offset = from; offset < to; offset += step) {
    const decision = readahead.next(offset, step);
    const block = Math.floor((offset + step - 1) / BLOCK);
    if (block !== lastBlock) windows.push(decision.windowBlocks);
    lastBlock = block;
  }
  return windows;
}

describe('Readahead', () => {
  it('starts at the initial window from offset 0 and doubles with each new block up to the max', () => {
    const readahead = new Readahead(options);
    expect(stream(readahead, 0, 10 * BLOCK, 128 * KiB)).toEqual([1, 2, 4, 8, 8, 8, 8, 8, 8, 8]);
  });

  it('drops to no readahead on a seek, and grows again from the initial window once the new stream proves sequential', () => {
    const readahead = new Readahead(options);
    stream(readahead, 0, 6 * BLOCK, MiB);
    expect(readahead.next(600 * MiB, MiB)).toEqual({ sequential: false, windowBlocks: 0 });
    expect(readahead.next(601 * MiB, MiB)).toEqual({ sequential: false, windowBlocks: 0 });
    expect(readahead.next(602 * MiB, MiB)).toEqual({ sequential: false, windowBlocks: 0 });
    expect(readahead.next(603 * MiB, MiB)).toEqual({ sequential: true, windowBlocks: 1 }); // 4 MiB read
    expect(readahead.next(604 * MiB, MiB).windowBlocks).toBe(2); // entered block 151
  });

  it('never reads ahead for random 1 MiB reads, even when each arrives as contiguous 128 KiB requests', () => {
    const readahead = new Readahead(options);
    const offsets = [700, 13, 512, 99, 301, 1000, 42].map((m) => m * MiB + 4096);
    for (const offset of offsets) {
      for (let piece = 0; piece < 8; piece++) {
        expect(readahead.next(offset + piece * 128 * KiB, 128 * KiB)).toEqual({ sequential: false, windowBlocks: 0 });
      }
    }
  });

  it('does not take random reads that land near each other for a stream', () => {
    const readahead = new Readahead(options);
    for (const offset of [100, 103, 101, 104, 300].map((m) => m * MiB)) expect(readahead.next(offset, 512 * 1024).sequential).toBe(false);
  });

  it('keeps a stream whose requests arrive slightly out of order', () => {
    const readahead = new Readahead(options);
    stream(readahead, 0, 3 * BLOCK, MiB);
    const order = [3, 5, 4, 7, 6, 8].map((m) => 3 * BLOCK + m * MiB - 3 * MiB);
    for (const offset of order) expect(readahead.next(offset, MiB).sequential).toBe(true);
  });

  it('reads nothing ahead when the max window is 0', () => {
    const readahead = new Readahead({ ...options, readaheadMaxBlocks: 0 });
    expect(readahead.next(0, MiB)).toEqual({ sequential: true, windowBlocks: 0 });
  });
});
