import { parseList } from '../options';
import { GIB, MIB } from '../units';
import { CACHE_ROW_GROUPS, checkCacheOptions, DEFAULT_CACHE_OPTIONS, nodeAddress, withServerCaps } from './options';

describe('row groups', () => {
  it('runs every group by default, the S3 gateway included, and takes --only gateway in table order', () => {
    expect(DEFAULT_CACHE_OPTIONS.only).toEqual(['cold', 'warm-ram', 'warm-disk', 'gateway', 'fan-out', 'hot-blocks', 'ceiling']);
    expect(parseList('gateway,warm-ram,cold', CACHE_ROW_GROUPS, 'row group')).toEqual(['cold', 'warm-ram', 'gateway']);
    expect(() => parseList('s3', CACHE_ROW_GROUPS, 'row group')).toThrow('choose from cold,warm-ram,warm-disk,gateway,fan-out,hot-blocks,ceiling');
  });
});

describe('nodeAddress', () => {
  it('puts simulated node i on 127.0.0.(11 + i)', () => {
    expect([0, 1, 2].map(nodeAddress)).toEqual(['127.0.0.11', '127.0.0.12', '127.0.0.13']);
  });
});

describe('withServerCaps', () => {
  it('gives each cache server RAM for the whole file and twice that on disk, by default', () => {
    expect(withServerCaps(DEFAULT_CACHE_OPTIONS)).toMatchObject({ serverRamBytes: GIB, serverDiskBytes: 2 * GIB });
  });

  it('keeps caps that were given, and never goes below 64 MiB of RAM for a small file', () => {
    expect(withServerCaps({ ...DEFAULT_CACHE_OPTIONS, serverRamBytes: 3 * GIB, serverDiskBytes: 5 * GIB })).toMatchObject({ serverRamBytes: 3 * GIB, serverDiskBytes: 5 * GIB });
    expect(withServerCaps({ ...DEFAULT_CACHE_OPTIONS, size: 8 * MIB })).toMatchObject({ serverRamBytes: 64 * MIB, serverDiskBytes: 128 * MIB });
  });
});

describe('checkCacheOptions', () => {
  it('accepts the defaults', () => {
    expect(() => checkCacheOptions(withServerCaps(DEFAULT_CACHE_OPTIONS))).not.toThrow();
  });

  it('names the flag to change', () => {
    expect(() => checkCacheOptions({ ...DEFAULT_CACHE_OPTIONS, runs: 0 })).toThrow('--runs must be a whole number of at least 1');
    expect(() => checkCacheOptions({ ...DEFAULT_CACHE_OPTIONS, hotReaders: 1 })).toThrow('--hot-readers must be a whole number of at least 2');
    expect(() => checkCacheOptions({ ...DEFAULT_CACHE_OPTIONS, nodes: 500 })).toThrow('--nodes must be at most');
    expect(() => checkCacheOptions({ ...DEFAULT_CACHE_OPTIONS, size: 64 * MIB, staggerBytes: 64 * MIB })).toThrow('--stagger must be smaller than --size');
    expect(() => checkCacheOptions({ ...DEFAULT_CACHE_OPTIONS, size: 1024 })).toThrow('--size must be at least one read');
  });
});
