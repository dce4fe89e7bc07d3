// The configuration of `granary cache serve` (the cache DaemonSet's process) and the cache settings a mount
// or a warm-up takes to reach the cluster cache; validated before anything starts, every default documented.
import { z } from 'zod';
import { DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE } from '../cache/block';
import { LOG_LEVELS } from './log-levels';

const GiB = 1024 ** 3;

/** Where the members of the ring come from: a static list, or the EndpointSlices of a headless Service. */
export const discoverySchema = z.object({
  /** Every cache server's base URL (http://host:port), this one included. Default none. */
  peers: z.array(z.string().url()).default([]),
  /** The cache's headless Service whose EndpointSlices list the members (Kubernetes discovery). Default none. */
  kubernetesService: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a Service name: lower-case letters, digits and hyphens').optional(),
  /** The Service's namespace. Default: POD_NAMESPACE, else the pod's service-account namespace. */
  kubernetesNamespace: z.string().min(1).optional(),
});

/** Options of `granary cache serve`. */
export const cacheServerConfigSchema = z
  .object({
    /** Address to listen on, HOST:PORT. Default 0.0.0.0:7070. */
    listen: z
      .string()
      .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'write HOST:PORT, e.g. 0.0.0.0:7070')
      .refine((value) => Number(value.slice(value.lastIndexOf(':') + 1)) <= 65535, 'the port must be at most 65535')
      .default('0.0.0.0:7070'),
    /** Bytes of blocks kept in RAM. Default 1 GiB. */
    ramBytes: z.number().int().min(0).default(GiB),
    /** Directory of the disk tier (NVMe). Default none: RAM only. */
    diskDir: z.string().min(1).optional(),
    /** Bytes of blocks kept on disk; required with diskDir. */
    diskBytes: z.number().int().min(0).optional(),
    /** Free space the disk tier always leaves on its filesystem, evicting to keep it. Default 5 GiB. */
    diskFreeFloorBytes: z.number().int().min(0).default(5 * GiB),
    /** Block size the server accepts requests for; readers must use the same. Default 4 MiB. */
    blockSize: z.number().int().min(MIN_BLOCK_SIZE).max(MAX_BLOCK_SIZE).default(DEFAULT_BLOCK_SIZE),
    /** File holding the cluster token (a mounted Secret). Required. */
    tokenFile: z.string().min(1, '--token-file is required: the cluster token protects every block'),
    discovery: discoverySchema.default(discoverySchema.parse({})),
    /** Log level of the JSON log on stderr. Default info. */
    logLevel: z.enum(LOG_LEVELS).default('info'),
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

/** How a mount or a warm-up reaches the cluster cache; `enabled` is false without peers or a Service. */
export const cacheClientSchema = discoverySchema
  .extend({
    /** File holding the cluster token; required when peers or a Service are given. */
    tokenFile: z.string().min(1).optional(),
    /** Block size of the cache servers. Default 4 MiB (the servers' default). */
    blockSize: z.number().int().min(MIN_BLOCK_SIZE).max(MAX_BLOCK_SIZE).default(DEFAULT_BLOCK_SIZE),
    /** How long to wait for an owner's response headers before reading from the object store instead (ms). Default 2 s. */
    headersTimeoutMs: z.number().int().min(1).default(2000),
    /** How long one block from an owner may take, body included, before reading from the object store instead (ms). Default 10 s. */
    requestTimeoutMs: z.number().int().min(1).default(10_000),
  })
  .refine((config) => !(config.peers.length > 0 && config.kubernetesService), {
    message: 'give --cache-peers or --cache-kubernetes-service, not both',
    path: ['peers'],
  })
  .refine((config) => (config.peers.length === 0 && !config.kubernetesService) || config.tokenFile, {
    message: '--cache-token-file is required with --cache-peers or --cache-kubernetes-service',
    path: ['tokenFile'],
  });

/** A validated cache client configuration. */
export type CacheClientConfig = z.infer<typeof cacheClientSchema>;

/** Whether the client configuration names a cache at all. */
export function cacheEnabled(config: CacheClientConfig): boolean {
  return config.peers.length > 0 || config.kubernetesService !== undefined;
}

/** Validates `input` into a CacheServerConfig; throws one readable error listing every problem. */
export function parseCacheServerConfig(input: z.input<typeof cacheServerConfigSchema>): CacheServerConfig {
  const result = cacheServerConfigSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || 'config'}: ${issue.message}`);
    throw new Error(`invalid cache configuration: ${problems.join('; ')}`);
  }
  return result.data;
}
