// The cache servers a client was given (listed, or discovered from the cache's Service) and which of them are
// ready, with why the others are not: what `granary warmup` shows before it starts, and in its summary.
import type { PeerReadiness } from '../cache/membership/membership';
import { peerProblem, type PeerProblemCode } from '../cache/peer-problem';

/** One listed cache server that is not in the ring, and why. */
export interface UnreadyCacheServer {
  url: string;
  problem: PeerProblemCode;
  reason: string;
}

/** How many cache servers were listed, which are ready, and why each of the others is not. */
export interface CacheServersReport {
  listed: number;
  ready: string[];
  notReady: UnreadyCacheServer[];
}

/** The report of a membership's readiness; `tokenFlag` is the flag a 401's reason tells the operator to check. */
export function cacheServersReport(readiness: readonly PeerReadiness[], tokenFlag: string): CacheServersReport {
  return {
    listed: readiness.length,
    ready: readiness.filter((peer) => peer.ready).map((peer) => peer.url),
    notReady: readiness.filter((peer) => !peer.ready).map((peer) => ({ url: peer.url, ...problemOf(peer, tokenFlag) })),
  };
}

function problemOf(peer: PeerReadiness, tokenFlag: string): { problem: PeerProblemCode; reason: string } {
  const { code, reason } = peerProblem(peer.failure, tokenFlag);
  return { problem: code, reason };
}

/** "URL not ready: REASON" for each server that is not ready, joined with "; ". */
export function describeUnready(report: CacheServersReport): string {
  return report.notReady.map((peer) => `${peer.url} not ready: ${peer.reason}`).join('; ');
}

/** One line: `2 of 3 ready (http://a:7070, http://b:7070); http://c:7070 not ready: connection refused`. */
export function describeCacheServers(report: CacheServersReport): string {
  const ready = `${report.ready.length} of ${report.listed} ready${report.ready.length > 0 ? ` (${report.ready.join(', ')})` : ''}`;
  return report.notReady.length > 0 ? `${ready}; ${describeUnready(report)}` : ready;
}
