import { Registry } from 'prom-client';
import { CacheMetrics } from './metrics';
import type { Tier } from './tiers/tier';

const tier = (name: 'ram' | 'disk', evictions: number): Tier =>
  ({ name, usedBytes: 0, capacityBytes: 1024, blockCount: 0, stats: { hits: 2, misses: 0, evictions, corruptions: 0 } }) as unknown as Tier;

describe('CacheMetrics', () => {
  it('exports every source and every tier\'s counters from the first scrape, at zero when nothing happened', async () => {
    const registry = new Registry();
    const metrics = new CacheMetrics(registry);
    metrics.sync({ tiers: [tier('ram', 0), tier('disk', 0)], originRequests: 0, originBytes: 0, originFailures: 0, ringMembers: 1 });
    const text = await registry.metrics();
    for (const from of ['ram', 'disk', 'origin']) expect(text).toContain(`granary_cache_served_bytes_total{from="${from}"} 0`);
    for (const name of ['ram', 'disk']) {
      expect(text).toContain(`granary_cache_evictions_total{tier="${name}"} 0`);
      expect(text).toContain(`granary_cache_misses_total{tier="${name}"} 0`);
      expect(text).toContain(`granary_cache_hits_total{tier="${name}"} 2`);
    }
    for (const cap of ['address', 'total']) expect(text).toContain(`granary_cache_refused_connections_total{cap="${cap}"} 0`);
    for (const path of ['/v1/block', '/v1/load', '/v1/info', '/v1/warmup', '/metrics', '/healthz', '/readyz']) {
      expect(text).toContain(`granary_cache_http_requests_total{path="${path}",code="200"} 0`);
    }
  });

  it('grows a counter by what its source counted since the last sync', async () => {
    const registry = new Registry();
    const metrics = new CacheMetrics(registry);
    metrics.sync({ tiers: [tier('ram', 0)], originRequests: 1, originBytes: 10, originFailures: 0, ringMembers: 1 });
    metrics.sync({ tiers: [tier('ram', 3)], originRequests: 4, originBytes: 40, originFailures: 0, ringMembers: 2 });
    const text = await registry.metrics();
    expect(text).toContain('granary_cache_evictions_total{tier="ram"} 3');
    expect(text).toContain('granary_cache_origin_requests_total 4');
    expect(text).toContain('granary_cache_origin_bytes_total 40');
    expect(text).toContain('granary_cache_ring_members 2');
  });
});
