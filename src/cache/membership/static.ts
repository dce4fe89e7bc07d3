// Static membership: a fixed list of cache server URLs (the --peers flag, for tests and non-Kubernetes
// setups), probed like any other source so that only the servers that answer are in the ring.
import type { Logger } from '../../log/logger';
import type { Membership, Probe } from './membership';
import { PeerProber, type PeerProberOptions } from './prober';

const EXAMPLE = 'http://10.0.0.5:8470';
const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/**
 * The canonical form of one cache server URL, `scheme://host:port`, the form every process puts in its ring.
 * Throws an Error naming what is wrong when `raw` is not an http(s) URL with a host, an explicit port and
 * nothing after them.
 */
export function peerUrl(raw: string): string {
  // host:port alone would parse as a URL whose scheme is the host name.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(raw.trim())) throw peerUrlError(raw, 'does not start with http:// or https://');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw peerUrlError(raw, 'is not a URL');
  }
  if (url.username !== '' || url.password !== '') {
    // Never echo the credentials back; the cluster token is what authenticates cache requests.
    throw peerUrlError(`${url.protocol}//${url.host}${url.pathname}`, 'carries a user name or password (the cluster token authenticates cache requests): remove "user:password@"');
  }
  const defaultPort = DEFAULT_PORTS[url.protocol];
  if (defaultPort === undefined) throw peerUrlError(raw, `uses ${url.protocol.slice(0, -1)}, not http or https`);
  if (url.hostname === '') throw peerUrlError(raw, 'has no host');
  // URL drops a port equal to the scheme's default, so whether one was written is read off the text itself.
  const authority = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#]*)(?::(\d+))?(?:[/?#]|$)/i.exec(raw.trim());
  if (authority?.[1] === undefined) throw peerUrlError(raw, 'has no port');
  if (url.pathname !== '/') throw peerUrlError(raw, `has a path (${url.pathname})`);
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(raw)) throw peerUrlError(raw, 'has a query or fragment');
  return `${url.protocol}//${url.hostname}:${url.port === '' ? defaultPort : url.port}`;
}

/** Parses a comma-separated list of cache server URLs (a CLI flag): trimmed, empties dropped, canonical form, no duplicates. */
export function parsePeerList(value: string): string[] {
  const urls = value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map(peerUrl);
  return [...new Set(urls)];
}

/**
 * The membership of a fixed list of cache servers: each is probed, and those that answer form the ring.
 * Throws when a URL is malformed (see peerUrl). An empty list is allowed: the ring stays NoPeers.
 */
export function staticMembership(peers: readonly string[], probe: Probe, logger: Logger, options: PeerProberOptions = {}): Membership {
  const urls = [...new Set(peers.map(peerUrl))];
  const prober = new PeerProber(probe, logger, options);
  prober.setCandidates(urls);
  logger.info({ peers: urls }, 'cache membership from a static list');
  return prober.start();
}

function peerUrlError(shown: string, problem: string): Error {
  return new Error(`cache server URL ${JSON.stringify(shown)} ${problem}; give each cache server as http(s)://HOST:PORT with no path or query, for example ${EXAMPLE}`);
}
