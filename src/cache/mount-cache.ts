// The cluster cache as one mount sees it: the ring (membership), the peer client, and the block source
// the read path uses. Opened at mount, closed at unmount.
import type { CacheClientConfig } from '../config/cache';
import type { BlockSource } from '../blocks/block-source';
import type { Logger } from '../log/logger';
import { ClusterBlockSource, type ClusterSourceStats } from './cluster-source';
import { openMembership } from './discovery';
import type { Membership } from './membership/membership';
import { PeerClient } from './peer-client';
import { endpointIdentity } from './protocol';
import { readTokenFile } from './token';

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
 * Connects a mount of `store` to the cluster cache `config` names: reads the token, starts the membership and
 * waits for its first probes (bounded by their timeout), so the first reads already have owners.
 */
export async function openMountCache(config: CacheClientConfig, store: CachedStore, logger: Logger): Promise<MountCache> {
  if (!config.tokenFile) throw new Error('--cache-token-file is required to use the cluster cache');
  const token = await readTokenFile(config.tokenFile);
  const client = new PeerClient({ token, headersTimeoutMs: config.headersTimeoutMs, requestTimeoutMs: config.requestTimeoutMs });
  const membership: Membership | undefined = await openMembership(config, (url, signal) => client.info(url, signal), logger);
  if (!membership) throw new Error('no cache servers named: pass --cache-peers or --cache-kubernetes-service');
  await membership.ready();
  const members = membership.picker().members.length;
  logger.info({ members, blockSize: config.blockSize }, members > 0 ? 'reading through the cluster cache' : 'no cache server is ready yet: reading from the object store until one is');
  let source: ClusterBlockSource | undefined;
  return {
    source(origin) {
      source = new ClusterBlockSource({ directory: membership, client, origin, endpoint: endpointIdentity(store.endpoint), bucket: store.bucket, blockSize: config.blockSize, logger });
      return source;
    },
    stats: () => source?.stats,
    close() {
      membership.close();
      client.close();
    },
  };
}
