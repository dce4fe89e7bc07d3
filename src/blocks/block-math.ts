// Arithmetic of fixed-size aligned blocks over one object: which blocks a read touches, where each ends. The
// mount's read path and the cluster cache both use it, so their blocks are the same ranges.
import type { ByteRange } from '../objectstore/store';

/** A byte range [start, end) of an object (the object store's own type: one definition for every layer). */
export type { ByteRange };

/** The index of the block that holds byte `offset`. */
export function blockIndexOf(offset: number, blockSize: number): number {
  return Math.floor(offset / blockSize);
}

/** The bytes of block `index` of an object of `objectSize` bytes: the last block is usually shorter. */
export function blockSpan(index: number, blockSize: number, objectSize: number): ByteRange {
  const start = index * blockSize;
  return { start, end: Math.min(start + blockSize, objectSize) };
}

/** How many blocks an object of `objectSize` bytes has (0 when empty). */
export function blockCount(objectSize: number, blockSize: number): number {
  return Math.ceil(objectSize / blockSize);
}

/**
 * The part of a read of `size` bytes at `offset` that lies inside the object: a read that starts at or past
 * the end is empty (undefined), one that crosses it is cut short.
 */
export function clipToObject(offset: number, size: number, objectSize: number): ByteRange | undefined {
  const end = Math.min(offset + size, objectSize);
  return offset < end ? { start: offset, end } : undefined;
}

/** The first and last (inclusive) block indexes of a non-empty span. */
export function blocksOf(span: ByteRange, blockSize: number): { first: number; last: number } {
  return { first: blockIndexOf(span.start, blockSize), last: blockIndexOf(span.end - 1, blockSize) };
}

/** `span` widened to multiples of `unit`, then clipped to `within` (a block, in practice). */
export function alignSpan(span: ByteRange, unit: number, within: ByteRange): ByteRange {
  return {
    start: Math.max(within.start, Math.floor(span.start / unit) * unit),
    end: Math.min(within.end, Math.ceil(span.end / unit) * unit),
  };
}
