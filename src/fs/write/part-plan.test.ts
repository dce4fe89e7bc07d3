import { MAX_PARTS } from '../../objectstore/store';
import { writePathSchema } from '../../config/write-path';
import { maxObjectSize, partSizeFor, partsOf } from './part-plan';

const MiB = 1024 * 1024;
const TiB = 1024 * 1024 * MiB;

describe('part plan', () => {
  const defaults = writePathSchema.parse({});

  it('starts at partSizeBytes and doubles every partSizeDoublingParts parts up to maxPartSizeBytes', () => {
    expect(partSizeFor(1, defaults)).toBe(8 * MiB);
    expect(partSizeFor(500, defaults)).toBe(8 * MiB);
    expect(partSizeFor(501, defaults)).toBe(16 * MiB);
    expect(partSizeFor(2001, defaults)).toBe(128 * MiB);
    expect(partSizeFor(2501, defaults)).toBe(256 * MiB);
    expect(partSizeFor(MAX_PARTS, defaults)).toBe(256 * MiB);
  });

  it('fits a 1 TiB checkpoint in fewer than MAX_PARTS parts with the defaults', () => {
    expect(maxObjectSize(defaults)).toBeGreaterThan(1.9 * TiB);
    const parts = partsOf(TiB, defaults);
    expect(parts.length).toBeLessThan(MAX_PARTS);
    expect(parts.at(-1)?.end).toBe(TiB);
  });

  it('without growth, is capped at MAX_PARTS first-size parts', () => {
    expect(maxObjectSize({ partSizeBytes: 5 * MiB, partSizeDoublingParts: MAX_PARTS, maxPartSizeBytes: 5 * MiB })).toBe(MAX_PARTS * 5 * MiB);
  });

  it('cuts an object into contiguous parts, the last one shorter', () => {
    expect(partsOf(0, defaults)).toEqual([]);
    expect(partsOf(20 * MiB, defaults)).toEqual([
      { partNumber: 1, start: 0, end: 8 * MiB },
      { partNumber: 2, start: 8 * MiB, end: 16 * MiB },
      { partNumber: 3, start: 16 * MiB, end: 20 * MiB },
    ]);
  });
});

describe('writePathSchema', () => {
  it('documents its defaults', () => {
    expect(writePathSchema.parse({})).toEqual({
      partSizeBytes: 8 * MiB,
      partSizeDoublingParts: 500,
      maxPartSizeBytes: 256 * MiB,
      maxPartsInFlight: 8,
      memoryBudgetBytes: 1024 * MiB,
      stagingDir: expect.stringMatching(/granary-staging$/),
      stagingMinFreeBytes: 1024 * MiB,
      singlePutMaxBytes: 16 * MiB,
      seedRangeBytes: 8 * MiB,
      abortAttempts: 10,
      abortRetryDelayMs: 1000,
      abortRetryMaxDelayMs: 60_000,
      unmountDrainTimeoutMs: 5000,
    });
  });

  it('rejects parts below S3 minimum and a memory budget smaller than the largest part', () => {
    expect(writePathSchema.safeParse({ partSizeBytes: MiB }).success).toBe(false);
    expect(writePathSchema.safeParse({ memoryBudgetBytes: 64 * MiB }).success).toBe(false);
    expect(writePathSchema.safeParse({ memoryBudgetBytes: 64 * MiB, maxPartSizeBytes: 64 * MiB }).success).toBe(true);
  });
});
