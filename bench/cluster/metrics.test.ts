import { addCounters, checkTier, checkWarmGateway, counterDelta, countersOf, NO_COUNTERS, sumSamples, totalServed, type CacheCounters } from './metrics';

const METRICS = [
  '# HELP granary_cache_served_bytes_total Bytes sent to readers, by where the block was found.',
  '# TYPE granary_cache_served_bytes_total counter',
  'granary_cache_served_bytes_total{from="ram"} 4194304',
  'granary_cache_served_bytes_total{from="disk"} 8388608',
  'granary_cache_served_bytes_total{from="origin"} 1048576',
  'granary_cache_served_bytes_total_extra{from="ram"} 99',
  '# TYPE granary_cache_origin_bytes_total counter',
  'granary_cache_origin_bytes_total 1048576',
  '',
].join('\n');

const counters = (ram: number, disk: number, origin: number, originBytes: number): CacheCounters => ({ served: { ram, disk, origin }, originBytes });

describe('sumSamples', () => {
  it('adds the samples of one metric whose labels match, and ignores comments and metrics that only share the prefix', () => {
    expect(sumSamples(METRICS, 'granary_cache_served_bytes_total')).toBe(4194304 + 8388608 + 1048576);
    expect(sumSamples(METRICS, 'granary_cache_served_bytes_total', 'from="disk"')).toBe(8388608);
    expect(sumSamples(METRICS, 'granary_cache_origin_bytes_total')).toBe(1048576);
  });

  it('is 0 for a metric that is absent or a label set that matches nothing', () => {
    expect(sumSamples(METRICS, 'granary_cache_evictions_total')).toBe(0);
    expect(sumSamples(METRICS, 'granary_cache_served_bytes_total', 'from="peer"')).toBe(0);
  });

  it('matches labels only inside the braces, not in the value', () => {
    expect(sumSamples('m{a="1"} 5\nm{a="2"} 1', 'm', '1"')).toBe(5);
  });
});

describe('counters', () => {
  it('reads served bytes by source and origin bytes from one server', () => {
    expect(countersOf(METRICS)).toEqual(counters(4194304, 8388608, 1048576, 1048576));
  });

  it('reads an older build\'s served bytes, labelled `source` instead of `from`', () => {
    const older = METRICS.replaceAll('{from=', '{source=');
    expect(countersOf(older)).toEqual(counters(4194304, 8388608, 1048576, 1048576));
  });

  it('sums servers and subtracts readings source by source', () => {
    const sum = [counters(1, 2, 3, 4), counters(10, 20, 30, 40)].reduce(addCounters, NO_COUNTERS);
    expect(sum).toEqual(counters(11, 22, 33, 44));
    expect(counterDelta(counters(1, 2, 3, 4), sum)).toEqual(counters(10, 20, 30, 40));
    expect(totalServed(sum)).toBe(66);
  });
});

describe('checkTier', () => {
  const file = 100 * 1024 * 1024;

  it('accepts a read served from the tier it claims and notes what the servers did', () => {
    expect(checkTier('ram', counters(file, 0, 0, 0), file)).toBe('cache servers served ram 100 MiB, disk 0 MiB, origin 0 MiB; filled from the object store 0 MiB');
    expect(checkTier('disk', counters(0.02 * file, 0.98 * file, 0, 0), file)).toContain('disk 98 MiB');
  });

  it('refuses a read that came mostly from another tier', () => {
    expect(() => checkTier('ram', counters(0.5 * file, 0.5 * file, 0, 0), file)).toThrow('NOT FROM THE RAM TIER: the cache servers served ram 50 MiB, disk 50 MiB');
  });

  it('refuses a read for which the servers went to the object store, however little', () => {
    expect(() => checkTier('disk', counters(0, file, 4194304, 4194304), file)).toThrow('NOT FROM THE DISK TIER');
  });
});

describe('checkWarmGateway', () => {
  const file = 100 * 1024 * 1024;

  it('accepts a read for which the gateways sent the whole file and the servers filled nothing, and notes what they did', () => {
    // A third of the blocks are the gateway's own server's, read from its store: no peer served them.
    expect(checkWarmGateway(counters(file * 2 / 3, 0, 0, 0), file, file)).toBe('the S3 gateways sent 100 MiB; the cache servers served each other ram 67 MiB, disk 0 MiB, origin 0 MiB and filled 0 MiB from the object store');
  });

  it('refuses a read for which the servers went to the object store, or the gateways sent less than the file', () => {
    expect(() => checkWarmGateway(counters(0, 0, 4194304, 4194304), file, file)).toThrow('NOT WARM: the S3 gateways sent 100 MiB; the cache servers served each other ram 0 MiB, disk 0 MiB, origin 4 MiB and filled 4 MiB from the object store for a 100 MiB file');
    expect(() => checkWarmGateway(NO_COUNTERS, file / 2, file)).toThrow('NOT WARM: the S3 gateways sent 50 MiB');
  });
});
