// The cluster cache as one mount sees it: its connection (the ring and the peer client) and the block source
// the read path uses. Opened at mount, closed at unmount.
import type { CacheClientConfig } from '../config/cache';
import type { BlockSource } from '../blocks/block-source';
import type { Logger } from '../log/logger';
import { ClusterBlockSource, type ClusterSourceStats } from './cluster-source';
import { connectToCache } from './connection';
import { endpointIdentity } from './protocol';

/** The object store a mount reads, as the cache names it. */
export interface CachedStore {
  /** The custom endpoint URL, undefined for AWS. */
  endpoint: string | undefined;
  bucket: string;
}

/** A mount's connection to the cluster cache. */
export interface MountCache {
  /** The read path's block source: owners first, `origin` when they fail. */
  source(origin: BlockSource): BlockSource;
  /** Counters of the source (once made), for the unmount log. */
  stats(): ClusterSourceStats | undefined;
  close(): void;
}

/**
 * Connects a mount of `store` to the cluster cache `config` names (see connectToCache), so the first reads already
 * have owners.
 */
export async function openMountCache(config: CacheClientConfig, store: CachedStore, logger: Logger): Promise<MountCache> {
  const { client, membership, close } = await connectToCache(config, logger);
  const members = membership.picker().members.length;
  logger.info({ members, blockSize: config.blockSize }, members > 0 ? 'reading through the cluster cache' : 'no cache server is ready yet: reading from the object store until one is');
  let source: ClusterBlockSource | undefined;
  return {
    source(origin) {
      source = new ClusterBlockSource({ directory: membership, client, origin, endpoint: endpointIdentity(store.endpoint), bucket: store.bucket, blockSize: config.blockSize, logger });
      return source;
    },
    stats: () => source?.stats,
    close,
  };
}
