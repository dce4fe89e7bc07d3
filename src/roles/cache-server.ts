// `granary cache serve`, composed: tiers, origin fills, the ring, the HTTP server, metrics, and an orderly
// shutdown. Steps: 1. read the token; 2. open the tiers (the disk index is rebuilt); 3. listen; 4. start
// the membership (for warm-up and the ring gauge); 5. ready. On SIGTERM: not ready, finish requests,
// flush disk writes, stop.
import type { CacheServerConfig } from '../config/cache';
import { splitHostPort } from '../config/listen-address';
import type { BlockFetcher } from '../blocks/block-fetcher';
import { OriginFetcher } from '../blocks/origin-fetcher';
import type { Logger } from '../log/logger';
import { createRegistry } from '../metrics/registry';
import { isObjectStoreError } from '../objectstore/errors';
import { endpointFromEnv, S3Store } from '../objectstore/s3';
import { parseS3Url } from '../objectstore/source';
import { version } from '../version';
import { BlockStore } from '../cache/block-store';
import { fitToFileLimit, openFileLimit } from '../cache/connection-gate';
import { openMembership } from '../cache/discovery';
import type { Membership } from '../cache/membership/membership';
import { CacheMetrics } from '../cache/metrics';
import { PeerClient } from '../cache/peer-client';
import { endpointIdentity } from '../cache/protocol';
import { OriginPool } from '../cache/origin-pool';
import { NoPeers } from '../cache/ring';
import { CacheServer } from '../cache/server';
import { DiskTier } from '../cache/tiers/disk';
import { RamTier } from '../cache/tiers/ram';
import type { Tier } from '../cache/tiers/tier';
import { readTokenFile } from '../cache/token';
import { warmPrefix } from '../cache/warmup';

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

  // One store and one origin fetcher per bucket asked for, opened on first use, at most config.originClients
  // of them (least recently used closed first); the credentials are the server's own.
  const closedOrigins = { requests: 0, bytes: 0 };
  const origins = new OriginPool<{ store: S3Store; origin: OriginFetcher; close(): void }>({
    capacity: config.originClients,
    open: (bucket) => {
      const objects = new S3Store({ bucket }, env);
      return { store: objects, origin: new OriginFetcher(objects, config.origin, logger), close: () => objects.close() };
    },
    // Its counters live on in the totals, so that the metrics never go backwards.
    onClose: (_bucket, { origin }) => {
      closedOrigins.requests += origin.stats.requests;
      closedOrigins.bytes += origin.stats.bytes;
    },
  });
  // Each fill holds its bucket's client for as long as it reads, so an eviction never closes it under the fill.
  // A bucket the object store says does not exist gives its place back at once: made-up names cannot push the
  // real buckets' clients out.
  const originOf = (bucket: string): BlockFetcher => ({
    fetch: (request) =>
      origins.use(bucket, ({ origin }) => origin.fetch(request)).catch((error: unknown) => {
        if (isObjectStoreError(error, 'NoSuchBucket')) origins.discard(bucket);
        throw error;
      }),
  });
  const shutdown = new AbortController();
  const registry = createRegistry();
  const metrics = new CacheMetrics(registry);
  const store = new BlockStore({ ram, ...(disk && { disk }), origin: originOf, logger, onFill: (seconds) => metrics.fillDuration.observe(seconds), signal: shutdown.signal });

  const client = new PeerClient({ token });
  // Opened once this server listens, so that its first probe of itself finds it.
  let membership: Membership | undefined = undefined;
  const info = () => ({ capacityBytes: config.ramBytes + (config.diskBytes ?? 0), ramBytes: config.ramBytes, diskBytes: config.diskBytes ?? 0, endpoint, version });

  const fileLimit = openFileLimit();
  const maxConnections = fitToFileLimit(config.maxConnections, fileLimit);
  if (maxConnections < config.maxConnections) {
    logger.warn({ maxConnections: config.maxConnections, openFileLimit: fileLimit, lowered: maxConnections }, 'the open file limit (RLIMIT_NOFILE) is too low for --max-connections: serving at most the lowered number of connections; raise the limit of the container runtime to serve more');
  }
  const limits = {
    headersTimeoutMs: config.headersTimeoutMs,
    // The headers are part of the request: Node refuses a headers timeout above the request timeout.
    requestTimeoutMs: Math.max(config.requestTimeoutMs, config.headersTimeoutMs),
    idleTimeoutMs: config.idleTimeoutMs,
    maxConnections,
    maxConnectionsPerAddress: Math.min(config.maxConnectionsPerAddress, maxConnections),
    maxHeaderBytes: config.maxHeaderBytes,
  };
  const server = new CacheServer({
    store,
    token,
    endpoint,
    buckets: config.buckets,
    limits,
    info,
    registry,
    metrics,
    logger,
    beforeScrape: () => {
      const open = origins.clients().map((entry) => entry.origin.stats);
      metrics.openConnections.set(server.openConnections);
      metrics.originClients.set(origins.size);
      metrics.sync({
        tiers,
        originRequests: open.reduce((sum, stats) => sum + stats.requests, closedOrigins.requests),
        originBytes: open.reduce((sum, stats) => sum + stats.bytes, closedOrigins.bytes),
        originFailures: store.stats.originFailures,
        ringMembers: (membership?.picker() ?? NoPeers).members.length,
      });
    },
    warmup: async (source, progress, signal) => {
      const ring = membership;
      if (!ring) throw new Error('this cache server has no ring (no --peers or --kubernetes-service): run `granary warmup` instead');
      const { bucket, prefix } = parseS3Url(source);
      // The listing's client is held for the whole warm-up.
      return origins.use(bucket, ({ store: objects }) =>
        warmPrefix({
          store: objects,
          bucket,
          prefix,
          endpoint,
          blockSize: config.blockSize,
          picker: () => ring.picker(),
          load: (owner, ref, loadSignal) => client.load(owner, ref, loadSignal),
          signal,
          onProgress: (update) => progress(update),
        }),
      );
    },
  });
  const { host, port } = splitHostPort(config.listen);
  const address = await server.listen(host, port);
  server.markReady();
  membership = await openMembership(config.discovery, (url, signal) => client.info(url, signal), logger);
  const bound = `${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  logger.info({ listen: bound, endpoint: endpoint || 'aws', ramBytes: config.ramBytes, disk: disk ? { dir: config.diskDir, capacityBytes: disk.capacityBytes, blocks: disk.blockCount, usedBytes: disk.usedBytes } : 'none', blockSize: config.blockSize, buckets: config.buckets.length > 0 ? config.buckets : 'any', originClients: config.originClients, limits, openFileLimit: fileLimit }, 'cache server ready');

  return {
    address: bound,
    async stop() {
      await server.close();
      shutdown.abort(new Error('the cache server is stopping'));
      await store.flush();
      membership?.close();
      client.close();
      origins.close();
      logger.info({ origin: store.stats, tiers: tiers.map((tier) => ({ tier: tier.name, blocks: tier.blockCount, usedBytes: tier.usedBytes, ...tier.stats })) }, 'cache server stopped');
    },
  };
}
