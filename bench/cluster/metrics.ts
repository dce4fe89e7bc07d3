// What the cache servers say they did, from their /metrics text: bytes served by where the block was found, bytes filled
// from the object store. The bench checks its warm rows against these.

/** Where a cache server found the bytes it served. */
export type ServedFrom = 'ram' | 'disk' | 'origin';

/** Bytes counted by the cache servers (summed over them), since they started. */
export interface CacheCounters {
  served: Record<ServedFrom, number>;
  /** Bytes the servers received from the object store (granary_cache_origin_bytes_total). */
  originBytes: number;
}

/** The served-bytes counter (label `from`). */
export const SERVED_BYTES_METRIC = 'granary_cache_served_bytes_total';

/** The origin-bytes counter. */
export const ORIGIN_BYTES_METRIC = 'granary_cache_origin_bytes_total';

/** Counters of nothing (a server that has not served yet, or the start of a sum). */
export const NO_COUNTERS: CacheCounters = { served: { ram: 0, disk: 0, origin: 0 }, originBytes: 0 };

/** The sum of a metric's samples in Prometheus text whose labels contain `labels` (e.g. `from="disk"`); 0 when absent. */
export function sumSamples(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name} `) || line.startsWith(`${name}{`))) continue;
    const labelEnd = line.lastIndexOf('}');
    const labelText = labelEnd >= 0 ? line.slice(name.length, labelEnd + 1) : '';
    if (!labelText.includes(labels)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

/** The counters one server's /metrics text holds. */
export function countersOf(text: string): CacheCounters {
  // Builds before 9067a0a named the label `source`; a server has only one of the two, so both are summed, and the
  // bench can measure an older build (`--granary-cli`) beside this one.
  const served = (from: ServedFrom) => sumSamples(text, SERVED_BYTES_METRIC, `from="${from}"`) + sumSamples(text, SERVED_BYTES_METRIC, `source="${from}"`);
  return { served: { ram: served('ram'), disk: served('disk'), origin: served('origin') }, originBytes: sumSamples(text, ORIGIN_BYTES_METRIC) };
}

/** `a + b`, counter by counter. */
export function addCounters(a: CacheCounters, b: CacheCounters): CacheCounters {
  return {
    served: { ram: a.served.ram + b.served.ram, disk: a.served.disk + b.served.disk, origin: a.served.origin + b.served.origin },
    originBytes: a.originBytes + b.originBytes,
  };
}

/** What happened between two readings of the same servers: `after - before`, source by source. */
export function counterDelta(before: CacheCounters, after: CacheCounters): CacheCounters {
  return {
    served: { ram: after.served.ram - before.served.ram, disk: after.served.disk - before.served.disk, origin: after.served.origin - before.served.origin },
    originBytes: after.originBytes - before.originBytes,
  };
}

/** Every byte the servers served, whatever the source. */
export function totalServed(counters: CacheCounters): number {
  return counters.served.ram + counters.served.disk + counters.served.origin;
}

/** Bytes as whole MiB, for the notes. */
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/** Share of `fileBytes` a warm read must have been served from the tier it claims (the rest: blocks read twice, retries). */
export const TIER_SHARE_REQUIRED = 0.95;

/**
 * Checks that a warm read of `fileBytes` came from `tier`: at least TIER_SHARE_REQUIRED of the file served
 * from it and nothing filled from the object store. Returns the note for the footer; throws, naming what
 * the servers did instead, when the claim does not hold.
 */
export function checkTier(tier: 'ram' | 'disk', delta: CacheCounters, fileBytes: number): string {
  const seen = `served ram ${mib(delta.served.ram)}, disk ${mib(delta.served.disk)}, origin ${mib(delta.served.origin)}; filled from the object store ${mib(delta.originBytes)}`;
  if (delta.served[tier] < TIER_SHARE_REQUIRED * fileBytes || delta.originBytes > 0) {
    throw new Error(`NOT FROM THE ${tier.toUpperCase()} TIER: the cache servers ${seen} for a ${mib(fileBytes)} file`);
  }
  return `cache servers ${seen}`;
}

/** Object bytes the S3 gateways sent to clients. */
export const GATEWAY_SENT_BYTES_METRIC = 'granary_s3_gateway_sent_bytes_total';

/**
 * Checks that a warm read of `fileBytes` through the S3 gateways was one: the gateways sent the whole file and the
 * cache servers filled nothing from the object store. (The blocks a gateway's own server owns come from its store
 * without a peer request, so served-bytes counters do not add up to the file here, unlike checkTier's.) Returns the
 * note for the footer; throws, naming what the servers did instead, when the claim does not hold.
 */
export function checkWarmGateway(delta: CacheCounters, sentBytes: number, fileBytes: number): string {
  const seen = `the S3 gateways sent ${mib(sentBytes)}; the cache servers served each other ram ${mib(delta.served.ram)}, disk ${mib(delta.served.disk)}, origin ${mib(delta.served.origin)} and filled ${mib(delta.originBytes)} from the object store`;
  if (sentBytes < fileBytes || delta.originBytes > 0) throw new Error(`NOT WARM: ${seen} for a ${mib(fileBytes)} file`);
  return seen;
}
