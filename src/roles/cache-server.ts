// `granary cache serve`, composed: tiers, origin fills, the ring, the HTTP server, metrics, and an orderly
// shutdown. Steps: 1. read the token; 2. open the tiers (the disk index is rebuilt); 3. listen; 4. start
// the membership (for warm-up and the ring gauge); 5. ready. On SIGTERM: not ready, finish requests,
// flush disk writes, stop.
import { promises as dns } from 'node:dns';
import * as os from 'node:os';
import type { CacheServerConfig } from '../config/cache';
import { splitHostPort } from '../config/listen-address';
import type { BlockFetcher } from '../blocks/block-fetcher';
import { OriginFetcher } from '../blocks/origin-fetcher';
import type { Logger } from '../log/logger';
import { createRegistry } from '../metrics/registry';
import { isObjectStoreError } from '../objectstore/errors';
import { checkRegionEnv, endpointFromEnv, S3Store } from '../objectstore/s3';
import { parseS3Url } from '../objectstore/s3-url';
import { version } from '../version';
import { BlockStore } from '../cache/block-store';
import { diskClampWarning, judgeRamBytes, type MemoryLimit } from '../cache/capacity-bounds';
import { fitToFileLimit, openFileLimit } from '../cache/connection-gate';
import { openMembership } from '../cache/discovery';
import type { Membership } from '../cache/membership/membership';
import { CacheMetrics } from '../cache/metrics';
import { PeerClient } from '../cache/peer-client';
import { endpointIdentity } from '../cache/protocol';
import { OriginPool } from '../cache/origin-pool';
import { NoPeers } from '../cache/ring';
import { CacheServer } from '../cache/server';
import { peersListSelf, selfMissingWarning, type SelfAddress } from '../cache/membership/self';
import { DiskTier, type FreeSpace } from '../cache/tiers/disk';
import { diskDirProblem } from '../cache/tiers/disk-dir';
import { RamTier } from '../cache/tiers/ram';
import type { Tier } from '../cache/tiers/tier';
import { readTokenFile } from '../cache/token';
import { warmPrefix } from '../cache/warmup';
import { openAccessKeys } from '../cache/s3-gateway/keys-reloader';
import { openTlsIdentity } from '../cache/s3-gateway/tls-identity';
import { S3Gateway } from '../cache/s3-gateway/gateway';
import { isSelfMemo, ringFetcher } from '../cache/s3-gateway/ring-fetcher';
import { readMemoryLimit } from '../system/memory-limit';

/** The facts of the machine the server checks its flags against, injectable for tests. */
export interface MachineFacts {
  /** The memory the process can have (default: cgroup limit, else MemTotal). */
  memoryLimit(): MemoryLimit | undefined;
  /** The free space of the file system holding a directory (default statfs). */
  statfs?: (dir: string) => Promise<FreeSpace>;
  /** The machine's names and addresses for telling whether --peers lists this server (default os and dns). */
  self: Omit<SelfAddress, 'listenHost' | 'port'>;
}

/** The machine this process runs on. */
function thisMachine(): MachineFacts {
  return {
    memoryLimit: () => readMemoryLimit(),
    self: {
      interfaceAddresses: Object.values(os.networkInterfaces()).flatMap((entries) => (entries ?? []).map((entry) => entry.address)),
      hostname: os.hostname(),
      resolve: async (name) => (await dns.lookup(name, { all: true })).map((entry) => entry.address),
    },
  };
}

/** The outside world the cache server touches, injectable for tests. */
export interface CacheServeDependencies {
  logger: Logger;
  /** Environment with the object store's endpoint and credentials (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The machine the flags are checked against (default this one). */
  machine?: MachineFacts;
}

/** A running cache server. */
export interface RunningCache {
  /** The bound address, host:port. */
  address: string;
  /** The S3 API's bound address, host:port, when it serves one. */
  s3Address?: string;
  stop(): Promise<void>;
}

/** Starts a cache server as `config` says; resolves once it is listening and ready. */
export async function startCache(config: CacheServerConfig, dependencies: CacheServeDependencies): Promise<RunningCache> {
  const { logger } = dependencies;
  const env = dependencies.env ?? process.env;
  const machine = dependencies.machine ?? thisMachine();
  const ramVerdict = judgeRamBytes(config.ramBytes, machine.memoryLimit());
  if ('refuse' in ramVerdict) throw new Error(ramVerdict.refuse);
  if ('warn' in ramVerdict) logger.warn({ ramBytes: config.ramBytes }, ramVerdict.warn);
  if (config.diskDir !== undefined) {
    const problem = await diskDirProblem(config.diskDir);
    if (problem !== undefined) throw new Error(`--disk-dir ${config.diskDir} cannot hold the disk tier: ${problem}; give a writable directory (or no --disk-dir for RAM only)`);
  }
  const token = await readTokenFile(config.tokenFile);
  // Read at start: a missing or malformed keys file stops the server with what to fix, not the first request.
  const s3Keys = config.s3 ? await openAccessKeys(config.s3.keysFile, logger) : undefined;
  // And the certificate: a pair that does not load stops it too; a rotated Secret serves new connections.
  let gateway: S3Gateway | undefined;
  const s3Tls = config.s3?.tlsCertFile && config.s3.tlsKeyFile ? await openTlsIdentity(config.s3.tlsCertFile, config.s3.tlsKeyFile, (identity) => gateway?.setIdentity(identity), logger) : undefined;
  const endpoint = endpointIdentity(endpointFromEnv(env));
  // The stores are made on first use; a wrong AWS_REGION is said at start, not at the first fill.
  checkRegionEnv(env);
  const ram = new RamTier(config.ramBytes);
  const disk =
    config.diskDir !== undefined
      ? await DiskTier.open({ dir: config.diskDir, capacityBytes: config.diskBytes ?? 0, freeSpaceFloorBytes: config.diskFreeFloorBytes, logger, ...(machine.statfs && { statfs: machine.statfs }) })
      : undefined;
  const diskFit = disk?.capacityFit;
  if (config.diskDir !== undefined && diskFit?.fit.clamped) logger.warn({ diskDir: config.diskDir, ...diskFit.facts, capacityBytes: diskFit.fit.capacityBytes }, diskClampWarning(config.diskDir, diskFit.facts, diskFit.fit));
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
  // The ring weight follows what the tiers can really hold: a disk tier lowered to fit its file system announces that.
  const diskBytes = disk?.capacityBytes ?? 0;
  const info = () => ({ capacityBytes: config.ramBytes + diskBytes, ramBytes: config.ramBytes, diskBytes, endpoint, version });

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
  const { peers } = config.discovery;
  if (peers.length > 0 && !(await peersListSelf(peers, { ...machine.self, listenHost: host, port: address.port }))) {
    logger.warn({ listen: config.listen, peers }, selfMissingWarning(config.listen, peers));
  }
  let s3Address: string | undefined;
  if (config.s3 && s3Keys) {
    const isSelf = isSelfMemo((url) => peersListSelf([url], { ...machine.self, listenHost: host, port: address.port }));
    const fetchers = new Map<string, BlockFetcher>();
    const fetcherOf = (bucket: string) => {
      let fetcher = fetchers.get(bucket);
      if (!fetcher) {
        fetcher = ringFetcher({ store, client, ring: () => membership, isSelf, origin: originOf(bucket), endpoint, bucket, blockSize: config.blockSize, logger });
        fetchers.set(bucket, fetcher);
      }
      return fetcher;
    };
    gateway = new S3Gateway({
      keys: () => s3Keys.current,
      region: config.s3.region,
      virtualHostSuffixes: config.s3.virtualHostSuffixes,
      buckets: config.buckets,
      limits,
      origin: {
        head: (bucket, key, signal) => origins.use(bucket, ({ store: objects }) => objects.head(key, signal)),
        headPart: (bucket, key, partNumber, signal) => origins.use(bucket, ({ store: objects }) => objects.headPart(key, partNumber, signal)),
        list: (bucket, options, signal) => origins.use(bucket, ({ store: objects }) => objects.list(options, signal)),
        fetcherOf,
      },
      blockSize: config.blockSize,
      readaheadBlocks: config.s3.readaheadBlocks,
      versionTtlMs: config.s3.versionTtlMs,
      ...(s3Tls && { tls: s3Tls.current }),
      registry,
      logger,
    });
    const s3 = splitHostPort(config.s3.listen);
    const s3Bound = await gateway.listen(s3.host, s3.port);
    s3Address = `${s3Bound.address.includes(':') ? `[${s3Bound.address}]` : s3Bound.address}:${s3Bound.port}`;
    logger.info({ s3Listen: s3Address, scheme: s3Tls ? 'https' : 'http', region: config.s3.region, accessKeys: s3Keys.current.size, readaheadBlocks: config.s3.readaheadBlocks, versionTtlMs: config.s3.versionTtlMs }, 'S3 API ready');
  }
  const bound = `${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  logger.info({ listen: bound, endpoint: endpoint || 'aws', ramBytes: config.ramBytes, disk: disk ? { dir: config.diskDir, capacityBytes: disk.capacityBytes, blocks: disk.blockCount, usedBytes: disk.usedBytes } : 'none', blockSize: config.blockSize, buckets: config.buckets.length > 0 ? config.buckets : 'any', originClients: config.originClients, limits, openFileLimit: fileLimit }, 'cache server ready');

  return {
    address: bound,
    ...(s3Address !== undefined && { s3Address }),
    async stop() {
      await gateway?.close();
      s3Keys?.close();
      s3Tls?.close();
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
