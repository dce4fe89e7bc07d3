// `granary cache serve`, composed: tiers, origin fills, the ring, the HTTP server, metrics, and an orderly
// shutdown. Steps: 1. read the token; 2. open the tiers (the disk index is rebuilt); 3. listen; 4. start
// the membership (for warm-up and the ring gauge); 5. ready. On SIGTERM: not ready, finish requests,
// flush disk writes, stop.
import type { CacheServerConfig } from '../config/cache';
import { DEFAULT_READ_PATH_CONFIG } from '../fs/read/config';
import { OriginBlockSource } from '../fs/read/block-source';
import type { Logger } from '../log/logger';
import { createRegistry } from '../metrics/registry';
import { endpointFromEnv, S3Store } from '../objectstore/s3';
import { parseS3Url } from '../objectstore/source';
import { version } from '../version';
import { BlockStore } from './block-store';
import { openMembership } from './discovery';
import type { Membership } from './membership/membership';
import { CacheMetrics } from './metrics';
import { PeerClient } from './peer-client';
import { endpointIdentity } from './protocol';
import { NoPeers } from './ring';
import { CacheServer } from './server';
import { DiskTier } from './tiers/disk';
import { RamTier } from './tiers/ram';
import type { Tier } from './tiers/tier';
import { readTokenFile } from './token';
import { warmPrefix } from './warmup';

/** The outside world the cache server touches, injectable for tests. */
export interface CacheServeDependencies {
  logger: Logger;
  /** Environment with the object store's endpoint and credentials (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** A running cache server. */
export interface RunningCache {
  /** The bound address, host:port. */
  address: string;
  stop(): Promise<void>;
}

/** Starts a cache server as `config` says; resolves once it is listening and ready. */
export async function startCache(config: CacheServerConfig, dependencies: CacheServeDependencies): Promise<RunningCache> {
  const { logger } = dependencies;
  const env = dependencies.env ?? process.env;
  const token = await readTokenFile(config.tokenFile);
  const endpoint = endpointIdentity(endpointFromEnv(env));
  const ram = new RamTier(config.ramBytes);
  const disk = config.diskDir !== undefined ? await DiskTier.open({ dir: config.diskDir, capacityBytes: config.diskBytes ?? 0, freeSpaceFloorBytes: config.diskFreeFloorBytes, logger }) : undefined;
  const tiers: Tier[] = disk ? [ram, disk] : [ram];

  // One store and one origin source per bucket asked for, created on first use; the credentials are the server's own.
  const stores = new Map<string, { store: S3Store; origin: OriginBlockSource }>();
  const originOf = (bucket: string) => {
    let entry = stores.get(bucket);
    if (!entry) {
      const store = new S3Store({ bucket }, env);
      entry = { store, origin: new OriginBlockSource(store, DEFAULT_READ_PATH_CONFIG, logger) };
      stores.set(bucket, entry);
    }
    return entry;
  };
  const shutdown = new AbortController();
  const registry = createRegistry();
  const metrics = new CacheMetrics(registry);
  const store = new BlockStore({ ram, ...(disk && { disk }), origin: (bucket) => originOf(bucket).origin, logger, onFill: (seconds) => metrics.fillDuration.observe(seconds), signal: shutdown.signal });

  const client = new PeerClient({ token });
  // Opened once this server listens, so that its first probe of itself finds it.
  let membership: Membership | undefined = undefined;
  const info = () => ({ capacityBytes: config.ramBytes + (config.diskBytes ?? 0), ramBytes: config.ramBytes, diskBytes: config.diskBytes ?? 0, endpoint, version });

  const server = new CacheServer({
    store,
    token,
    endpoint,
    info,
    registry,
    metrics,
    logger,
    beforeScrape: () => {
      const origins = [...stores.values()].map((entry) => entry.origin.stats);
      metrics.sync({
        tiers,
        originRequests: origins.reduce((sum, stats) => sum + stats.requests, 0),
        originBytes: origins.reduce((sum, stats) => sum + stats.bytes, 0),
        originFailures: store.stats.originFailures,
        ringMembers: (membership?.picker() ?? NoPeers).members.length,
      });
    },
    warmup: async (source, progress, signal) => {
      const ring = membership;
      if (!ring) throw new Error('this cache server has no ring (no --peers or --kubernetes-service): run `granary warmup` instead');
      const { bucket, prefix } = parseS3Url(source);
      const { store: objects } = originOf(bucket);
      return warmPrefix({
        store: objects,
        bucket,
        prefix,
        endpoint,
        blockSize: config.blockSize,
        picker: () => ring.picker(),
        load: (owner, ref, loadSignal) => client.load(owner, ref, loadSignal),
        signal,
        onProgress: (update) => progress(update),
      });
    },
  });
  const [host, port] = splitHostPort(config.listen);
  const address = await server.listen(host, port);
  server.markReady();
  membership = await openMembership(config.discovery, (url, signal) => client.info(url, signal), logger);
  const bound = `${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  logger.info({ listen: bound, endpoint: endpoint || 'aws', ramBytes: config.ramBytes, disk: disk ? { dir: config.diskDir, capacityBytes: disk.capacityBytes, blocks: disk.blockCount, usedBytes: disk.usedBytes } : 'none', blockSize: config.blockSize }, 'cache server ready');

  return {
    address: bound,
    async stop() {
      await server.close();
      shutdown.abort(new Error('the cache server is stopping'));
      await store.flush();
      membership?.close();
      client.close();
      for (const entry of stores.values()) entry.store.close();
      logger.info({ origin: store.stats, tiers: tiers.map((tier) => ({ tier: tier.name, blocks: tier.blockCount, usedBytes: tier.usedBytes, ...tier.stats })) }, 'cache server stopped');
    },
  };
}

/** Splits HOST:PORT ([v6]:PORT too). */
function splitHostPort(listen: string): [string, number] {
  const colon = listen.lastIndexOf(':');
  return [listen.slice(0, colon).replace(/^\[|\]$/g, ''), Number(listen.slice(colon + 1))];
}
