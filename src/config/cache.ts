// The configuration of `granary cache serve` (the cache DaemonSet's process) and the cache settings a mount
// or a warm-up takes to reach the cluster cache; validated before anything starts, every default documented.
import * as path from 'node:path';
import { z } from 'zod';
import { blockSizeSchema } from '../blocks/block-size';
import { DEFAULT_ORIGIN_FETCH_POLICY, originFetchPolicySchema } from '../blocks/origin-fetch-policy';
import { bucketNameProblem } from '../objectstore/s3-url';
import { listenAddressSchema } from './listen-address';
import { LOG_LEVELS } from './log-levels';
import { parseConfig, type ConfigParser } from './parse';

const GiB = 1024 ** 3;

/**
 * The bounds that keep a cache server up whoever reaches its port, token or not (see cacheServerConfigSchema
 * for what each means). The connection caps are sized for the clients a large cluster really has: every mount
 * of a node reaches a cache server from the node plugin pod's one address, each with at most 32 connections
 * (its fetch limit, PeerClient.maxSocketsPerPeer) plus one for probes; a node with 16 busy mounts all
 * reading from this one server holds 16 x 33 = 528, under the per-address cap with room to spare, and 500
 * such nodes each holding 32 (one busy mount) are 16,000, under the total.
 */
export const CACHE_SERVER_LIMITS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 30_000,
  maxConnections: 16_384,
  maxConnectionsPerAddress: 1024,
  maxHeaderBytes: 16 * 1024,
  originClients: 64,
} as const;

const bucketName = z.string().superRefine((name, context) => {
  const problem = bucketNameProblem(name);
  if (problem) context.addIssue({ code: z.ZodIssueCode.custom, message: `"${name}" is not a bucket name: ${problem}` });
});

/** Where the members of the ring come from: a static list, or the EndpointSlices of a headless Service. */
export const discoverySchema = z.object({
  /** Every cache server's base URL (http://host:port), this one included. Default none. */
  peers: z.array(z.string().url()).default([]),
  /** The cache's headless Service whose EndpointSlices list the members (Kubernetes discovery). Default none. */
  kubernetesService: z
    .string()
    .trim()
    .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'not a Service name (lower-case letters, digits and hyphens, at most 63)')
    .optional(),
  /** The Service's namespace. Default: POD_NAMESPACE, else the pod's service-account namespace. */
  kubernetesNamespace: z.string().min(1).optional(),
});

/** The S3 gateway's options (`granary cache serve --s3-listen`). */
export const s3GatewaySchema = z.object({
  /** Address of the S3 API, HOST:PORT; its own port (the cache port keeps the block protocol, probes and metrics). */
  listen: listenAddressSchema('0.0.0.0:9000'),
  /** The access keys file: a JSON file from a Secret (src/cache/s3-gateway/access-keys.ts); nothing is served anonymously. */
  keysFile: z.string().trim().min(1, '--s3-keys-file is required with --s3-listen: the gateway serves only requests signed with its access keys'),
  /** The region GetBucketLocation answers (clients sign with theirs; any is accepted). Default us-east-1. */
  region: z.string().trim().regex(/^[a-z0-9-]{1,32}$/, 'not a region name (lower-case letters, digits and hyphens)').default('us-east-1'),
  /** Host suffixes of virtual-hosted-style requests (BUCKET.SUFFIX); path style always works. */
  virtualHostSuffixes: z.array(z.string().trim().toLowerCase().regex(/^[a-z0-9.-]+$/, 'not a host name suffix')).default([]),
  /** Blocks of an object fetched ahead of the one being sent to the client. Default 4. */
  readaheadBlocks: z.number().int().min(0).max(64).default(4),
  /**
   * How long an object's version (the origin's HEAD: ETag, size, date) answers the GetObjects that follow it, so that
   * a download in ranged chunks costs the origin one HEAD, not one per chunk; 0 sends a HEAD for every request.
   * Default 1 s, as a mount keeps attributes (attrTimeoutMs). At most 1 hour.
   */
  versionTtlMs: z.number().int().min(0).max(3_600_000).default(1000),
  /** Serve HTTPS with this certificate chain (PEM, e.g. a kubernetes.io/tls Secret's tls.crt); with tlsKeyFile. Default: plain HTTP. */
  tlsCertFile: z.string().trim().min(1).optional(),
  /** The certificate's private key (PEM, tls.key); with tlsCertFile. */
  tlsKeyFile: z.string().trim().min(1).optional(),
}).refine((s3) => (s3.tlsCertFile === undefined) === (s3.tlsKeyFile === undefined), {
  message: 'give the certificate and its key together (--s3-tls-cert and --s3-tls-key), or neither for plain HTTP',
  path: ['tlsCertFile'],
});

/** Options of `granary cache serve`. */
export const cacheServerConfigSchema = z
  .object({
    /** Address to listen on, HOST:PORT. Default 0.0.0.0:7070. */
    listen: listenAddressSchema('0.0.0.0:7070').default('0.0.0.0:7070'),
    /** Bytes of blocks kept in RAM. Default 1 GiB. */
    ramBytes: z.number().int().min(0).default(GiB),
    /** Directory of the disk tier (NVMe). Default none: RAM only. */
    diskDir: z.string().min(1).optional(),
    /** Bytes of blocks kept on disk; required with diskDir. */
    diskBytes: z.number().int().min(0).optional(),
    /** Free space the disk tier always leaves on its filesystem, evicting to keep it. Default 5 GiB. */
    diskFreeFloorBytes: z.number().int().min(0).default(5 * GiB),
    /** Block size the server accepts requests for; readers must use the same. 64 KiB to 64 MiB (src/blocks/block-size.ts). Default 4 MiB. */
    blockSize: blockSizeSchema('--block-size'),
    /**
     * How long the server's fills from the object store may take (src/blocks/origin-fetch-policy.ts): default 20 s
     * per block, every try of the object store (S3StoreOptions.maxAttempts) included.
     */
    origin: originFetchPolicySchema.default(DEFAULT_ORIGIN_FETCH_POLICY),
    /** File holding the cluster token (a mounted Secret). Required. */
    tokenFile: z.string().min(1, '--token-file is required: the cluster token protects every block'),
    discovery: discoverySchema.default(discoverySchema.parse({})),
    /**
     * The only buckets this server reads and caches; a request for another answers 403. Default none: any
     * bucket its credentials can read (each one costs an origin client, see originClients).
     */
    buckets: z.array(bucketName).default([]),
    /** Object store clients (one per bucket, with its keep-alive sockets) kept open, least recently used closed first. Default 64. */
    originClients: z.number().int().min(1).default(CACHE_SERVER_LIMITS.originClients),
    /**
     * How long a client may take to send a request's headers, from its first byte (or from connecting) to the
     * blank line; then it is answered 408 and closed. A slowloris holds a connection for at most this. Default 10 s.
     */
    headersTimeoutMs: z.number().int().min(100).default(CACHE_SERVER_LIMITS.headersTimeoutMs),
    /** How long a client may take to send a whole request, body included (only a warm-up has one); at least headersTimeoutMs. Default 30 s. */
    requestTimeoutMs: z.number().int().min(100).default(CACHE_SERVER_LIMITS.requestTimeoutMs),
    /**
     * How long a keep-alive connection may sit idle between requests before the server closes it. Announced in
     * every answer (Keep-Alive: timeout=N), so clients stop reusing it a second before. Default 30 s.
     */
    idleTimeoutMs: z.number().int().min(1000).default(CACHE_SERVER_LIMITS.idleTimeoutMs),
    /**
     * Open connections, all clients together; the excess is closed at accept. Lowered at start to fit the
     * process's file descriptor limit (see fitToFileLimit). Default 16,384.
     */
    maxConnections: z.number().int().min(1).default(CACHE_SERVER_LIMITS.maxConnections),
    /** Open connections from one source address (at most maxConnections); the excess is closed at accept, before any byte is read. Default 1,024. */
    maxConnectionsPerAddress: z.number().int().min(1).default(CACHE_SERVER_LIMITS.maxConnectionsPerAddress),
    /** Bytes of a request's line and headers; larger ones answer 431. A block query needs at most about 13 KiB. Default 16 KiB. */
    maxHeaderBytes: z.number().int().min(1024).max(1024 * 1024).default(CACHE_SERVER_LIMITS.maxHeaderBytes),
    /** Log level of the JSON log on stderr. Default info. */
    logLevel: z.enum(LOG_LEVELS).default('info'),
    /** The read-only S3 API on its own port (src/cache/s3-gateway). Default none: off. */
    s3: s3GatewaySchema.optional(),
  })
  .refine((config) => (config.diskDir === undefined) === (config.diskBytes === undefined), {
    message: '--disk-dir and --disk-bytes go together: give both for a disk tier, or neither for RAM only',
    path: ['diskBytes'],
  })
  .refine((config) => config.ramBytes > 0 || (config.diskBytes ?? 0) > 0, {
    message: 'a cache with no RAM and no disk holds nothing: give --ram-bytes or --disk-dir with --disk-bytes',
    path: ['ramBytes'],
  })
  .refine((config) => !(config.discovery.peers.length > 0 && config.discovery.kubernetesService), {
    message: 'give --peers or --kubernetes-service, not both',
    path: ['discovery'],
  });

/** A validated cache server configuration. */
export type CacheServerConfig = z.infer<typeof cacheServerConfigSchema>;

/** How long a client waits for a cache server before giving up on it (ms): the role's defaults. */
export interface CacheClientTimeouts {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

/**
 * The options of a client of the cluster cache (a mount, the CSI node plugin for its mounts, a warm-up: the shared
 * --cache-* flags), with `timeouts` as the role's defaults for how long an owner may take.
 */
export function cacheClientSchemaWith(timeouts: CacheClientTimeouts) {
  return discoverySchema
    .extend({
      /** File holding the cluster token; required when peers or a Service are given. */
      tokenFile: z.string().trim().min(1, '--cache-token-file is required: it names the file holding the cluster token').optional(),
      /** Block size of the cache servers, 64 KiB to 64 MiB (src/blocks/block-size.ts). Default 4 MiB (the servers' default). */
      blockSize: blockSizeSchema('--cache-block-size'),
      /** How long to wait for an owner's response headers before giving up on it (ms). */
      headersTimeoutMs: z.number().int().min(1).default(timeouts.headersTimeoutMs),
      /** How long one request to an owner may take, body included, before giving up on it (ms). */
      requestTimeoutMs: z.number().int().min(1).default(timeouts.requestTimeoutMs),
      /**
       * A mount's: serve its cluster-cache counters (Prometheus text, GET /metrics) on a unix socket at this path, for
       * the CSI node plugin to collect (it gives each mount one in the volume's state folder). Default none.
       */
      metricsSocket: z.string().refine((value) => path.isAbsolute(value), '--cache-metrics-socket must be an absolute path').optional(),
    })
    .refine((config) => !(config.peers.length > 0 && config.kubernetesService), {
      message: 'give --cache-peers or --cache-kubernetes-service, not both',
      path: ['peers'],
    })
    .refine((config) => (config.peers.length === 0 && !config.kubernetesService) || config.tokenFile, {
      message: '--cache-token-file is required with --cache-peers or --cache-kubernetes-service',
      path: ['tokenFile'],
    })
    .refine((config) => config.kubernetesNamespace === undefined || config.kubernetesService !== undefined, {
      message: '--cache-kubernetes-namespace goes with --cache-kubernetes-service',
      path: ['kubernetesNamespace'],
    });
}

/**
 * How a mount reaches the cluster cache; no cache without peers or a Service (see cacheEnabled). A mount gives an
 * owner 2 s for its headers and 10 s for a block, then reads that block from the object store instead.
 */
export const cacheClientSchema = cacheClientSchemaWith({ headersTimeoutMs: 2000, requestTimeoutMs: 10_000 });

/** A validated cache client configuration. */
export type CacheClientConfig = z.infer<typeof cacheClientSchema>;

/** Whether the client configuration names a cache at all. */
export function cacheEnabled(config: CacheClientConfig): boolean {
  return config.peers.length > 0 || config.kubernetesService !== undefined;
}

/** Validates `input` into a CacheServerConfig; throws one readable error listing every problem ("invalid cache configuration: …"). */
export const parseCacheServerConfig: ConfigParser<z.input<typeof cacheServerConfigSchema>, CacheServerConfig> = parseConfig(cacheServerConfigSchema, 'cache');
