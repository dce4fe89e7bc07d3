// Cache servers refusing the cluster token (401): a configuration error that otherwise only shows as reads going to
// the object store. Warned once per server, not once per block or probe, and counted for the mount's metrics.
import type { Logger } from '../log/logger';
import { PeerError } from './peer-client';

/** Counts the requests cache servers refused for the token, and warns the first time each server refuses. */
export class TokenRefusals {
  /** Requests refused with 401 since creation, probes and block reads together. */
  total = 0;
  private readonly warned = new Set<string>();

  constructor(private readonly logger: Logger) {}

  /** Records `error` from a request to `server` if it is a 401; returns whether it was. */
  note(server: string, error: unknown): boolean {
    if (!(error instanceof PeerError && error.code === 'Unauthorized')) return false;
    this.total++;
    if (!this.warned.has(server)) {
      this.warned.add(server);
      this.logger.warn(
        { peer: server, status: 401 },
        `the cache server ${server} refused the cache token (401): check --cache-token-file / the cluster token Secret; reading from the object store instead of it (warned once per server)`,
      );
    }
    return true;
  }
}
