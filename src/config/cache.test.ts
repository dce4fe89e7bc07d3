import { DEFAULT_ORIGIN_FETCH_POLICY } from '../blocks/origin-fetch-policy';
import { CACHE_SERVER_LIMITS, cacheClientSchema, cacheClientSchemaWith, parseCacheServerConfig } from './cache';

describe('parseCacheServerConfig', () => {
  it('bounds every client by default: documented timeouts, connection caps, header size and origin clients; any bucket', () => {
    const config = parseCacheServerConfig({ tokenFile: '/etc/granary/token' });
    expect(config).toMatchObject({
      buckets: [],
      originClients: 64,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      idleTimeoutMs: 30_000,
      maxConnections: 16_384,
      maxConnectionsPerAddress: 1024,
      maxHeaderBytes: 16 * 1024,
    });
    expect(config).toMatchObject(CACHE_SERVER_LIMITS);
  });

  it('fits the connection caps to a large cluster: 16 busy mounts on one node, 500 nodes with one busy mount each', () => {
    // A busy mount holds up to 32 block connections (its fetch limit) and one for probes to each cache server.
    const perMount = 33;
    expect(16 * perMount).toBeLessThanOrEqual(CACHE_SERVER_LIMITS.maxConnectionsPerAddress);
    expect(500 * 32).toBeLessThanOrEqual(CACHE_SERVER_LIMITS.maxConnections);
  });

  it('takes the buckets to serve, refusing a name no bucket can have', () => {
    expect(parseCacheServerConfig({ tokenFile: 't', buckets: ['models', 'datasets.v2'] }).buckets).toEqual(['models', 'datasets.v2']);
    expect(() => parseCacheServerConfig({ tokenFile: 't', buckets: ['models', 'Bad_Bucket'] })).toThrow(/buckets\.1: "Bad_Bucket" is not a bucket name: it may only hold lower-case letters/);
  });

  it('fills from the origin with its own fetch policy, the documented defaults unless told otherwise', () => {
    expect(parseCacheServerConfig({ tokenFile: 't' }).origin).toEqual(DEFAULT_ORIGIN_FETCH_POLICY);
    expect(parseCacheServerConfig({ tokenFile: 't', origin: { fetchTimeoutMs: 5000 } }).origin).toEqual({ ...DEFAULT_ORIGIN_FETCH_POLICY, fetchTimeoutMs: 5000 });
    expect(() => parseCacheServerConfig({ tokenFile: 't', origin: { fetchTimeoutMs: 0 } })).toThrow(/origin\.fetchTimeoutMs/);
  });

  it('refuses bounds that would disable themselves', () => {
    expect(() => parseCacheServerConfig({ tokenFile: 't', headersTimeoutMs: 0 })).toThrow(/headersTimeoutMs/);
    expect(() => parseCacheServerConfig({ tokenFile: 't', maxConnectionsPerAddress: 0 })).toThrow(/maxConnectionsPerAddress/);
    expect(() => parseCacheServerConfig({ tokenFile: 't', originClients: 0 })).toThrow(/originClients/);
  });
});

describe('cacheClientSchema (the shared --cache-* options of mounts, the CSI node plugin and warm-up)', () => {
  const problems = (input: Parameters<typeof cacheClientSchema.parse>[0]) => cacheClientSchema.safeParse(input).error?.issues.map((issue) => issue.message) ?? [];

  it('names no cache by default, with a mount\'s timeouts', () => {
    expect(cacheClientSchema.parse({})).toEqual({ peers: [], blockSize: 4 * 1024 * 1024, headersTimeoutMs: 2000, requestTimeoutMs: 10_000 });
  });

  it('refuses a namespace without a Service, a Service name no Service can have, and an empty token file', () => {
    expect(problems({ peers: ['http://10.0.0.5:7070'], tokenFile: 't', kubernetesNamespace: 'granary' })).toEqual(['--cache-kubernetes-namespace goes with --cache-kubernetes-service']);
    expect(problems({ kubernetesService: 'Granary_Cache', tokenFile: 't' })).toEqual(['not a Service name (lower-case letters, digits and hyphens, at most 63)']);
    expect(problems({ kubernetesService: 'a'.repeat(64), tokenFile: 't' })).toHaveLength(1);
    expect(problems({ kubernetesService: 'a'.repeat(63), tokenFile: 't' })).toEqual([]);
    expect(problems({ peers: ['http://10.0.0.5:7070'], tokenFile: ' ' })[0]).toMatch(/^--cache-token-file is required/);
  });

  it('says which flag to fix for a block size out of range', () => {
    expect(problems({ blockSize: 4096 })).toEqual(['--cache-block-size must be from 64 KiB to 64 MiB']);
  });

  it('takes other timeouts as the defaults of another role', () => {
    expect(cacheClientSchemaWith({ headersTimeoutMs: 120_000, requestTimeoutMs: 120_000 }).parse({})).toMatchObject({ headersTimeoutMs: 120_000, requestTimeoutMs: 120_000 });
  });
});
