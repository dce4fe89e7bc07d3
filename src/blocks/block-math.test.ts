import { alignSpan, blockCount, blockIndexOf, blocksOf, blockSpan, clipToObject } from './block-math';

const BLOCK = 4 * 1024 * 1024;

describe('block math', () => {
  it('maps offsets to aligned blocks', () => {
    expect(blockIndexOf(0, BLOCK)).toBe(0);
    expect(blockIndexOf(BLOCK - 1, BLOCK)).toBe(0);
    expect(blockIndexOf(BLOCK, BLOCK)).toBe(1);
    expect(blocksOf({ start: BLOCK - 10, end: BLOCK + 10 }, BLOCK)).toEqual({ first: 0, last: 1 });
    expect(blocksOf({ start: 0, end: BLOCK }, BLOCK)).toEqual({ first: 0, last: 0 });
  });

  it('cuts the last block at the end of the object', () => {
    const size = 2 * BLOCK + 123;
    expect(blockCount(size, BLOCK)).toBe(3);
    expect(blockSpan(1, BLOCK, size)).toEqual({ start: BLOCK, end: 2 * BLOCK });
    expect(blockSpan(2, BLOCK, size)).toEqual({ start: 2 * BLOCK, end: 2 * BLOCK + 123 });
    expect(blockCount(0, BLOCK)).toBe(0);
    expect(blockCount(BLOCK, BLOCK)).toBe(1);
  });

  it('clips reads at EOF: short across it, empty at or past it', () => {
    expect(clipToObject(0, 100, 50)).toEqual({ start: 0, end: 50 });
    expect(clipToObject(50, 100, 50)).toBeUndefined();
    expect(clipToObject(60, 100, 50)).toBeUndefined();
    expect(clipToObject(10, 0, 50)).toBeUndefined();
    expect(clipToObject(0, 10, 0)).toBeUndefined();
  });

  it('rounds a span out to a unit without leaving its block', () => {
    const block = { start: BLOCK, end: 2 * BLOCK };
    expect(alignSpan({ start: BLOCK + 5, end: BLOCK + 70_000 }, 65_536, block)).toEqual({ start: BLOCK, end: BLOCK + 131_072 });
    // The last, partial block: the unit may not reach past the object's end.
    expect(alignSpan({ start: 100, end: 150 }, 65_536, { start: 0, end: 200 })).toEqual({ start: 0, end: 200 });
  });
});
