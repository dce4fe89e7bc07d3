import { MAX_BLOCK_SIZE } from '../blocks/block-size';
import { DEFAULT_ORIGIN_FETCH_POLICY } from '../blocks/origin-fetch-policy';
import { DEFAULT_READ_PATH_CONFIG, readPathSchema } from './read-path';

describe('readPathSchema', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_READ_PATH_CONFIG).toMatchObject({
      blockSizeBytes: 4 * 1024 * 1024,
      readaheadInitialBlocks: 1,
      readaheadMaxBlocks: 8,
      maxConcurrentFetches: 32,
      fetchTimeoutMs: 20_000,
    });
  });

  it('embeds the origin fetch policy, with its defaults', () => {
    expect(DEFAULT_READ_PATH_CONFIG).toMatchObject(DEFAULT_ORIGIN_FETCH_POLICY);
  });

  it('takes the block sizes the cache takes: 64 KiB to 64 MiB', () => {
    expect(readPathSchema.safeParse({ blockSizeBytes: MAX_BLOCK_SIZE, cacheBytes: 2 * MAX_BLOCK_SIZE }).success).toBe(true);
    expect(readPathSchema.safeParse({ blockSizeBytes: 2 * MAX_BLOCK_SIZE, cacheBytes: 4 * MAX_BLOCK_SIZE }).success).toBe(false);
  });

  it('refuses a random-read unit larger than a block', () => {
    expect(readPathSchema.safeParse({ blockSizeBytes: 1 << 20, randomReadUnitBytes: 2 << 20 }).success).toBe(false);
  });
});

describe('readPathSchema cache size', () => {
  it('refuses a cache smaller than two blocks, saying why', () => {
    const result = readPathSchema.safeParse({ cacheBytes: 0 });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(/at least two blocks/);
    expect(readPathSchema.safeParse({ cacheBytes: 8 * 1024 * 1024 }).success).toBe(true);
  });
});
