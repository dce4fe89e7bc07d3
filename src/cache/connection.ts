// A client's connection to the cluster cache, made from the cache client options every client role shares: the
// peer client (with the cluster token) and the ring's membership. Mounts and warm-up both connect through here.
import type { CacheClientConfig } from '../config/cache';
import type { Logger } from '../log/logger';
import { openMembership } from './discovery';
import type { Membership } from './membership/membership';
import { PeerClient } from './peer-client';
import { readTokenFile } from './token';
import { TokenRefusals } from './token-refusals';

/** The peer client and the membership of one client of the cache; close() ends both. */
export interface CacheConnection {
  client: PeerClient;
  membership: Membership;
  /** The requests the servers refused for the token (warned once per server); readers report theirs here too. */
  refusals: TokenRefusals;
  close(): void;
}

/** Options of connectToCache beyond the configuration. */
export interface CacheConnectionOptions {
  /** Connections kept per owner (default PeerClient's): a warm-up opens as many as it loads blocks at once. */
  maxSocketsPerPeer?: number;
}

/**
 * Connects to the cluster cache `config` names: reads the token, starts the membership and waits for its first
 * probes (bounded by their timeout), so that the first requests already have owners. Throws when the token cannot
 * be read or no cache server is named; nothing stays open then.
 */
export async function connectToCache(config: CacheClientConfig, logger: Logger, options: CacheConnectionOptions = {}): Promise<CacheConnection> {
  if (!config.tokenFile) throw new Error('--cache-token-file is required to use the cluster cache');
  const token = await readTokenFile(config.tokenFile);
  const client = new PeerClient({
    token,
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    ...(options.maxSocketsPerPeer !== undefined && { maxSocketsPerPeer: options.maxSocketsPerPeer }),
  });
  const refusals = new TokenRefusals(logger);
  // A server that refuses the token never passes its probe, so it never joins the ring: the probe is where a
  // wrong token shows first.
  const probe = (url: string, signal: AbortSignal) =>
    client.info(url, signal).catch((error: unknown) => {
      refusals.note(url, error);
      throw error;
    });
  let membership: Membership | undefined;
  try {
    membership = await openMembership(config, probe, logger);
    if (!membership) throw new Error('no cache servers named: pass --cache-peers or --cache-kubernetes-service');
    await membership.ready();
  } catch (error) {
    membership?.close();
    client.close();
    throw error;
  }
  const opened = membership;
  return {
    client,
    membership: opened,
    refusals,
    close() {
      opened.close();
      client.close();
    },
  };
}
