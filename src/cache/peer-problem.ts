// Why a cache server cannot be used, in words an operator can act on: one classification of the typed errors of
// the peer client and the membership, shared by `granary warmup` and `granary cache status`.
import { EndpointNotReady, ProbeTimeout } from './membership/membership';
import { PeerError } from './peer-client';

/** What kind of problem keeps a cache server out: the reasons an operator fixes differently. */
export type PeerProblemCode =
  /** Nothing listens on that port: the server is down, or the port is wrong. */
  | 'ConnectionRefused'
  /** No connection at all: the name did not resolve, the host or network is unreachable. */
  | 'ConnectFailed'
  /** The connection broke before an answer, or the answer broke off. */
  | 'ConnectionReset'
  /** No answer in time. */
  | 'Timeout'
  /** 401: the server refused the cluster token. */
  | 'Unauthorized'
  /** Something answers there, but not a granary cache server (an S3 server's XML, a web page). */
  | 'NotGranary'
  /** A granary cache server that says it is not ready (503 while starting or stopping), or that discovery marks not ready. */
  | 'NotReady'
  /** Any other failure, named by its message. */
  | 'Failed';

/** One cache server's problem: its code and a short reason for a report line ("connection refused"). */
export interface PeerProblem {
  code: PeerProblemCode;
  reason: string;
}

/** The problem of a server whose answer is awaited: not probed yet (discovered after the first round). */
export const NOT_PROBED: PeerProblem = { code: 'NotReady', reason: 'not probed yet (discovered after the first round of probes)' };

/**
 * The problem `error` (a PeerError, a ProbeTimeout, an EndpointNotReady, anything else) reveals. `tokenFlag` is the
 * flag that names the token file in the command at hand, which a 401's reason tells the operator to check.
 */
export function peerProblem(error: unknown, tokenFlag: string): PeerProblem {
  if (error === undefined) return NOT_PROBED;
  if (error instanceof ProbeTimeout) return { code: 'Timeout', reason: `timeout: no answer within ${error.timeoutMs} ms` };
  if (error instanceof EndpointNotReady) return { code: 'NotReady', reason: error.message };
  if (!(error instanceof PeerError)) return { code: 'Failed', reason: messageOf(error) };
  switch (error.code) {
    case 'Unauthorized':
      return { code: 'Unauthorized', reason: `401: the cache token was refused — check ${tokenFlag}` };
    case 'NotGranary':
      return { code: 'NotGranary', reason: `not a granary cache server (answered ${error.status ?? '?'}${error.contentType ? ` ${error.contentType}` : ''}, not granary's JSON)` };
    case 'TimedOut':
      return { code: 'Timeout', reason: 'timeout: no answer in time' };
  }
  if (error.status === 503) return { code: 'NotReady', reason: '503: not ready (starting or stopping)' };
  if (error.status !== undefined) return { code: 'Failed', reason: `answered ${error.status}: ${error.message}` };
  switch (error.connection) {
    case 'ConnectionRefused':
      return { code: 'ConnectionRefused', reason: 'connection refused' };
    case 'ConnectFailed':
      return { code: 'ConnectFailed', reason: `cannot connect: ${messageOf(error.cause ?? error)}` };
    case 'ConnectTimeout':
    case 'HeadersTimeout':
    case 'BodyTimeout':
      return { code: 'Timeout', reason: 'timeout: no answer in time' };
    case 'BadHead':
      return { code: 'NotGranary', reason: `not a granary cache server (its answer is not HTTP/1.1: ${messageOf(error.cause ?? error)})` };
    case 'ConnectionReset':
    case 'ShortBody':
      return { code: 'ConnectionReset', reason: `the connection broke before a whole answer: ${messageOf(error.cause ?? error)}` };
    default:
      return { code: 'Failed', reason: error.message };
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
