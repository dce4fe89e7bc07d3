// How big each part of a multipart upload is: small first, doubling as the file grows, so any file up to
// maxObjectSize() fits in S3's MAX_PARTS parts without knowing its size in advance.
import { MAX_PARTS } from '../../objectstore/store';
import type { WritePathConfig } from '../../config/write-path';

/** The part-size settings of the write path. */
export type PartPlan = Pick<WritePathConfig, 'partSizeBytes' | 'partSizeDoublingParts' | 'maxPartSizeBytes'>;

/** The size of part `partNumber` (1-based): partSizeBytes, doubled after every partSizeDoublingParts parts, capped at maxPartSizeBytes. */
export function partSizeFor(partNumber: number, plan: PartPlan): number {
  const doublings = Math.floor((partNumber - 1) / plan.partSizeDoublingParts);
  // 2 ** 40 already exceeds any cap; stop there so the product stays a safe integer.
  return Math.min(plan.maxPartSizeBytes, plan.partSizeBytes * 2 ** Math.min(doublings, 40));
}

/** The largest object a plan can upload in MAX_PARTS parts. */
export function maxObjectSize(plan: PartPlan): number {
  let total = 0;
  for (let partNumber = 1; partNumber <= MAX_PARTS; partNumber++) total += partSizeFor(partNumber, plan);
  return total;
}

/** The parts ([start, end) and number) that cut an object of `size` bytes according to the plan; none for an empty object. */
export function partsOf(size: number, plan: PartPlan): Array<{ partNumber: number; start: number; end: number }> {
  const parts: Array<{ partNumber: number; start: number; end: number }> = [];
  for (let start = 0, partNumber = 1; start < size; partNumber++) {
    const end = Math.min(size, start + partSizeFor(partNumber, plan));
    parts.push({ partNumber, start, end });
    start = end;
  }
  return parts;
}
