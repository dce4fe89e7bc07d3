// The cache server's metrics (prom-client): counters and gauges the dashboard and alerts are built on.
// The tiers and the store keep plain counters; the server updates these from them and from each request.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { PATHS } from './protocol';
import { SERVED_FROM, type Tier } from './tiers/tier';

/** The connection caps a refusal is counted under: per source address, or the total. */
export const REFUSAL_CAPS = ['address', 'total'] as const;

/** One of REFUSAL_CAPS. */
export type RefusalCap = (typeof REFUSAL_CAPS)[number];

/** The plain counters CacheMetrics.sync() reads. */
export interface MetricsSnapshot {
  tiers: readonly Tier[];
  originRequests: number;
  originBytes: number;
  originFailures: number;
  ringMembers: number;
}

/** Every metric of a cache server, registered in one registry. Names are a public interface (the chart's dashboard uses them). */
export class CacheMetrics {
  /** Reads answered by a tier (ram, disk). */
  readonly hits: Counter<'tier'>;
  /** Reads a tier could not answer. */
  readonly misses: Counter<'tier'>;
  /** Bytes sent to readers, by where the block was found: ram, disk or origin. */
  readonly servedBytes: Counter<'from'>;
  /** Ranged GETs sent to the object store to fill blocks. */
  readonly originRequests: Counter;
  /** Bytes received from the object store. */
  readonly originBytes: Counter;
  /** Fills from the object store that failed (after retries). */
  readonly originFailures: Counter;
  /** Time to fill one block from the object store. */
  readonly fillDuration: Histogram;
  /** Blocks dropped to respect a tier's cap or the disk's free-space floor. */
  readonly evictions: Counter<'tier'>;
  /** Blocks read back from disk that failed their checks: checksum, format, or a file naming another block (dropped and refetched). */
  readonly corruptBlocks: Counter;
  /** Bytes held per tier. */
  readonly usedBytes: Gauge<'tier'>;
  /** Byte cap per tier. */
  readonly capacityBytes: Gauge<'tier'>;
  /** Blocks held per tier. */
  readonly blocks: Gauge<'tier'>;
  /** Cache servers in this server's view of the ring. */
  readonly ringMembers: Gauge;
  /** HTTP requests by path and status code. */
  readonly requests: Counter<'path' | 'code'>;
  /** Requests refused for a missing or wrong cluster token. */
  readonly unauthorized: Counter;
  /** Connections closed at accept, by the cap they were over: per source address, or in all. */
  readonly refusedConnections: Counter<'cap'>;
  /** Client connections open now. */
  readonly openConnections: Gauge;
  /** Object store clients (one per bucket) open now. */
  readonly originClients: Gauge;

  private readonly seen = new Map<string, number>();

  /**
   * Brings the metrics up to the plain counters the tiers and the store keep (called before each scrape):
   * gauges are set, counters grow by what their source counted since the last call.
   */
  sync(snapshot: MetricsSnapshot): void {
    for (const tier of snapshot.tiers) {
      const labels = { tier: tier.name };
      this.usedBytes.set(labels, tier.usedBytes);
      this.capacityBytes.set(labels, tier.capacityBytes);
      this.blocks.set(labels, tier.blockCount);
      this.grow(this.hits, `hits:${tier.name}`, tier.stats.hits, labels);
      this.grow(this.misses, `misses:${tier.name}`, tier.stats.misses, labels);
      this.grow(this.evictions, `evictions:${tier.name}`, tier.stats.evictions, labels);
      this.grow(this.corruptBlocks, `corruptions:${tier.name}`, tier.stats.corruptions);
    }
    this.grow(this.originRequests, 'originRequests', snapshot.originRequests);
    this.grow(this.originBytes, 'originBytes', snapshot.originBytes);
    this.grow(this.originFailures, 'originFailures', snapshot.originFailures);
    this.ringMembers.set(snapshot.ringMembers);
  }

  private grow<L extends string>(counter: Counter<L>, name: string, total: number, labels?: Partial<Record<L, string>>): void {
    const previous = this.seen.get(name);
    const delta = total - (previous ?? 0);
    if (delta <= 0) {
      // A labelled series exists from the first sync, at 0: a panel over a tier that never evicted shows 0, not "no data".
      if (previous === undefined && labels) counter.inc(labels, 0);
      this.seen.set(name, previous ?? 0);
      return;
    }
    this.seen.set(name, total);
    if (labels) counter.inc(labels, delta);
    else counter.inc(delta);
  }

  constructor(registry: Registry) {
    const registers = [registry];
    this.hits = new Counter({ name: 'granary_cache_hits_total', help: 'Block reads answered by a tier.', labelNames: ['tier'], registers });
    this.misses = new Counter({ name: 'granary_cache_misses_total', help: 'Block reads a tier could not answer.', labelNames: ['tier'], registers });
    this.servedBytes = new Counter({ name: 'granary_cache_served_bytes_total', help: 'Bytes sent to readers, by where the block was found.', labelNames: ['from'], registers });
    this.originRequests = new Counter({ name: 'granary_cache_origin_requests_total', help: 'Ranged GETs sent to the object store to fill blocks.', registers });
    this.originBytes = new Counter({ name: 'granary_cache_origin_bytes_total', help: 'Bytes received from the object store.', registers });
    this.originFailures = new Counter({ name: 'granary_cache_origin_failures_total', help: 'Block fills from the object store that failed after retries.', registers });
    this.fillDuration = new Histogram({
      name: 'granary_cache_fill_duration_seconds',
      help: 'Time to fill one block from the object store.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.evictions = new Counter({ name: 'granary_cache_evictions_total', help: 'Blocks dropped to respect a cap or the free-space floor.', labelNames: ['tier'], registers });
    this.corruptBlocks = new Counter({ name: 'granary_cache_corrupt_blocks_total', help: 'Blocks read back from disk that failed their checks (checksum, format, or a file naming another block), dropped and fetched again.', registers });
    this.usedBytes = new Gauge({ name: 'granary_cache_used_bytes', help: 'Bytes held per tier.', labelNames: ['tier'], registers });
    this.capacityBytes = new Gauge({ name: 'granary_cache_capacity_bytes', help: 'Byte cap per tier.', labelNames: ['tier'], registers });
    this.blocks = new Gauge({ name: 'granary_cache_blocks', help: 'Blocks held per tier.', labelNames: ['tier'], registers });
    this.ringMembers = new Gauge({ name: 'granary_cache_ring_members', help: 'Cache servers in the ring this server sees.', registers });
    this.requests = new Counter({ name: 'granary_cache_http_requests_total', help: 'HTTP requests by path and status.', labelNames: ['path', 'code'], registers });
    this.unauthorized = new Counter({ name: 'granary_cache_unauthorized_requests_total', help: 'Requests refused for a missing or wrong cluster token.', registers });
    this.refusedConnections = new Counter({ name: 'granary_cache_refused_connections_total', help: 'Connections closed at accept, by the cap they were over (address, total).', labelNames: ['cap'], registers });
    this.openConnections = new Gauge({ name: 'granary_cache_open_connections', help: 'Client connections open now.', registers });
    this.originClients = new Gauge({ name: 'granary_cache_origin_clients', help: 'Object store clients (one per bucket) open now.', registers });
    // Every source from the start, at zero: the dashboard's share served from the cache divides by the origin's rate.
    for (const from of SERVED_FROM) this.servedBytes.inc({ from }, 0);
    // Likewise every cap and every path's successes: a rate or a ratio over them is 0, not "no data", before the first event.
    for (const cap of REFUSAL_CAPS) this.refusedConnections.inc({ cap }, 0);
    for (const path of Object.values(PATHS)) this.requests.inc({ path, code: '200' }, 0);
  }
}
