import { Registry } from 'prom-client';
import type { ClusterFetcherStats } from './cluster-fetcher';
import { registerMountCacheMetrics } from './mount-cache-metrics';

describe('registerMountCacheMetrics', () => {
  it('reports zeros before the fetcher exists, then the fetcher\'s counters at each scrape', async () => {
    const registry = new Registry();
    const fetcher: { stats?: ClusterFetcherStats } = {};
    let refusals = 0;
    registerMountCacheMetrics(registry, () => fetcher.stats, () => refusals);
    const before = await registry.metrics();
    expect(before).toContain('granary_mount_cache_token_refusals_total 0');
    for (const from of ['ram', 'disk', 'origin']) expect(before).toContain(`granary_mount_cache_bytes_total{from="${from}"} 0`);
    expect(before).toContain('granary_mount_cache_fetches_total 0');

    const stats: ClusterFetcherStats = { peerFetches: 2, peerBytes: { ram: 4096, disk: 0, origin: 1024 }, peerFailures: 1, bypassed: 3 };
    fetcher.stats = stats;
    expect(await registry.metrics()).toContain('granary_mount_cache_fetches_total 2');
    stats.peerFetches = 5;
    stats.peerBytes.ram = 8192;
    const after = await registry.metrics();
    expect(after).toContain('granary_mount_cache_bytes_total{from="ram"} 8192');
    expect(after).toContain('granary_mount_cache_bytes_total{from="origin"} 1024');
    expect(after).toContain('granary_mount_cache_fetches_total 5');
    expect(after).toContain('granary_mount_cache_failures_total 1');
    expect(after).toContain('granary_mount_cache_bypassed_total 3');
    refusals = 7;
    expect(await registry.metrics()).toContain('granary_mount_cache_token_refusals_total 7');
  });
});
