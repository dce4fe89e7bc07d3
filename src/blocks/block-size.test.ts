import { BLOCK_SIZE_RANGE, blockSizeSchema, DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE } from './block-size';

describe('block size', () => {
  it('is 4 MiB by default, from 64 KiB to 64 MiB', () => {
    expect([DEFAULT_BLOCK_SIZE, MIN_BLOCK_SIZE, MAX_BLOCK_SIZE]).toEqual([4 * 1024 * 1024, 64 * 1024, 64 * 1024 * 1024]);
    expect(BLOCK_SIZE_RANGE).toBe('64 KiB to 64 MiB');
  });

  it('accepts the limits and refuses one byte outside them, naming the field and the range', () => {
    const schema = blockSizeSchema('--cache-block-size');
    expect(schema.parse(undefined)).toBe(DEFAULT_BLOCK_SIZE);
    expect(schema.parse(MIN_BLOCK_SIZE)).toBe(MIN_BLOCK_SIZE);
    expect(schema.parse(MAX_BLOCK_SIZE)).toBe(MAX_BLOCK_SIZE);
    for (const size of [MIN_BLOCK_SIZE - 1, MAX_BLOCK_SIZE + 1, 1.5 * 1024 * 1024 + 0.5]) {
      const result = schema.safeParse(size);
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]?.message).toBe('--cache-block-size must be from 64 KiB to 64 MiB');
    }
  });
});
