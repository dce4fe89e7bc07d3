import { DEFAULT_ORIGIN_FETCH_POLICY } from '../blocks/origin-fetch-policy';
import { CACHE_SERVER_LIMITS, parseCacheServerConfig } from './cache';

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
    expect(parseCacheServerConfig({ tokenFile: 't', origin: { fetchAttempts: 5 } }).origin).toEqual({ ...DEFAULT_ORIGIN_FETCH_POLICY, fetchAttempts: 5 });
    expect(() => parseCacheServerConfig({ tokenFile: 't', origin: { fetchTimeoutMs: 0 } })).toThrow(/origin\.fetchTimeoutMs/);
  });

  it('refuses bounds that would disable themselves', () => {
    expect(() => parseCacheServerConfig({ tokenFile: 't', headersTimeoutMs: 0 })).toThrow(/headersTimeoutMs/);
    expect(() => parseCacheServerConfig({ tokenFile: 't', maxConnectionsPerAddress: 0 })).toThrow(/maxConnectionsPerAddress/);
    expect(() => parseCacheServerConfig({ tokenFile: 't', originClients: 0 })).toThrow(/originClients/);
  });
});
