// The cluster cache as one mount sees it: its connection (the ring and the peer client) and the block fetcher
// the read path uses, and its counters on a metrics socket when the config names one. Opened at mount, closed at unmount.
import { Registry } from 'prom-client';
import type { CacheClientConfig } from '../config/cache';
import type { BlockFetcher } from '../blocks/block-fetcher';
import type { Logger } from '../log/logger';
import { ClusterFetcher, type ClusterFetcherStats } from './cluster-fetcher';
import { connectToCache } from './connection';
import { type MetricsSocket, serveMetricsSocket } from '../metrics/socket-server';
import { registerMountCacheMetrics } from './mount-cache-metrics';
import { endpointIdentity } from './protocol';

/** The object store a mount reads, as the cache names it. */
export interface CachedStore {
  /** The custom endpoint URL, undefined for AWS. */
  endpoint: string | undefined;
  bucket: string;
}

/** A mount's connection to the cluster cache. */
export interface MountCache {
  /** The read path's block fetcher: owners first, `origin` when they fail. */
  fetcher(origin: BlockFetcher): BlockFetcher;
  /** Counters of the fetcher (once made), for the unmount log. */
  stats(): ClusterFetcherStats | undefined;
  close(): void;
}

/**
 * Connects a mount of `store` to the cluster cache `config` names (see connectToCache), so the first reads already
 * have owners.
 */
export async function openMountCache(config: CacheClientConfig, store: CachedStore, logger: Logger): Promise<MountCache> {
  const { client, membership, refusals, close } = await connectToCache(config, logger);
  const members = membership.picker().members.length;
  logger.info({ members, blockSize: config.blockSize }, members > 0 ? 'reading through the cluster cache' : 'no cache server is ready yet: reading from the object store until one is');
  let fetcher: ClusterFetcher | undefined;
  const metrics = config.metricsSocket === undefined ? undefined : await serveCounters(config.metricsSocket, () => fetcher?.stats, () => refusals.total, logger);
  return {
    fetcher(origin) {
      fetcher = new ClusterFetcher({ directory: membership, client, origin, endpoint: endpointIdentity(store.endpoint), bucket: store.bucket, blockSize: config.blockSize, logger, refusals });
      return fetcher;
    },
    stats: () => fetcher?.stats,
    close() {
      void metrics?.close();
      close();
    },
  };
}

/** Serves the fetcher's counters on the metrics socket; a socket that cannot be served is logged, and the mount goes on without it. */
async function serveCounters(socketPath: string, stats: () => ClusterFetcherStats | undefined, tokenRefusals: () => number, logger: Logger): Promise<MetricsSocket | undefined> {
  const registry = new Registry();
  registerMountCacheMetrics(registry, stats, tokenRefusals);
  try {
    const served = await serveMetricsSocket(registry, socketPath);
    logger.info({ socket: socketPath }, 'the mount\'s cluster-cache counters are served on a unix socket (GET /metrics)');
    return served;
  } catch (error) {
    logger.warn({ err: error, socket: socketPath }, 'cannot serve the mount\'s metrics; it reads on without them');
    return undefined;
  }
}
