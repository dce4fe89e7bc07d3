// A mount's view of the cluster cache as Prometheus metrics: the ClusterFetcher's plain counters, read at each
// scrape. Names are a public interface (the chart's dashboard uses them); the node plugin adds volume_id.
import { Counter, type Registry } from 'prom-client';
import type { ClusterFetcherStats } from './cluster-fetcher';
import { SERVED_FROM } from './tiers/tier';

/**
 * Registers the mount's cluster-cache counters in `registry`; `stats` gives the fetcher's counters (undefined before
 * the fetcher exists), `tokenRefusals` the requests cache servers refused for the token (from the first probe on).
 */
export function registerMountCacheMetrics(registry: Registry, stats: () => ClusterFetcherStats | undefined, tokenRefusals: () => number): void {
  // Each counter follows the fetcher's total: at a scrape it grows by what the fetcher counted since the last one.
  const seen = new Map<string, number>();
  const follow = (counter: Counter<string>, name: string, total: number, labels: Record<string, string> = {}): void => {
    const delta = total - (seen.get(name) ?? 0);
    if (delta <= 0) return;
    seen.set(name, total);
    counter.inc(labels, delta);
  };
  const sync = (): void => {
    follow(refused, 'refused', tokenRefusals());
    const current = stats();
    if (!current) return;
    follow(fetches, 'fetches', current.peerFetches);
    for (const from of SERVED_FROM) follow(bytes, `bytes:${from}`, current.peerBytes[from], { from });
    follow(failures, 'failures', current.peerFailures);
    follow(bypassed, 'bypassed', current.bypassed);
  };
  // Every counter syncs all of them before it is read, whichever the registry reads first.
  const registers = [registry];
  const fetches = new Counter({ name: 'granary_mount_cache_fetches_total', help: 'Block ranges the mount read from their owner in the cluster cache.', registers, collect: sync });
  const bytes = new Counter({
    name: 'granary_mount_cache_bytes_total',
    help: 'Bytes the mount read from the cluster cache, by where the owner found them (ram, disk, origin: filled from the object store).',
    labelNames: ['from'],
    registers,
    collect: sync,
  });
  const failures = new Counter({ name: 'granary_mount_cache_failures_total', help: 'Requests to a block\'s owner that failed; each range was read from the object store instead.', registers, collect: sync });
  const bypassed = new Counter({ name: 'granary_mount_cache_bypassed_total', help: 'Block ranges read from the object store directly: no owner was known, or the object has no ETag.', registers, collect: sync });
  const refused = new Counter({
    name: 'granary_mount_cache_token_refusals_total',
    help: 'Requests (probes and block reads) that a cache server refused with 401: the mount\'s cluster token is wrong; it reads from the object store instead.',
    registers,
    collect: sync,
  });
  // Every source from the start, at zero: a rate over a source never seen is 0, not "no data".
  for (const from of SERVED_FROM) bytes.inc({ from }, 0);
}
