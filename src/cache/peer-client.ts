// The HTTP client of the cache protocol: mounts fetch blocks from their owners with it, warm-up loads
// blocks with it, memberships probe servers with it. Keep-alive sockets, the cluster token on every request,
// bounded time per request, and one error type whose code says whether to fall back.
import * as http from 'node:http';
import * as https from 'node:https';
import type { ByteRange } from '../blocks/block-math';
import type { BlockRef } from './block';
import { authorization, blockQuery, HEADERS, PATHS, type ErrorBody, type LoadResult, type ServerInfo } from './protocol';
import { isConnectionError, type ConnectionErrorCode } from '../net/errors';
import { RawHttpPool } from '../net/raw-http';
import { SERVED_FROM, type ServedFrom } from './tiers/tier';

/** Why a peer request failed. Every code means "read from the object store instead" to a mount. */
export type PeerErrorCode =
  /** Refused, reset, 5xx, a malformed answer: the server is down or broken. */
  | 'Unavailable'
  /**
   * No answer (headers or the whole block) in time. The server may be down, or only busy filling the block from
   * the object store: a reader goes elsewhere for this block but leaves the verdict to a probe.
   */
  | 'TimedOut'
  /** 401: the token is missing or wrong (a configuration error worth a loud log). */
  | 'Unauthorized'
  /** 4xx other than 401: the server would not take this request (wrong endpoint, block size, bad input). */
  | 'Rejected'
  /** 404 / 412: the object is gone or changed; the object store will say the same. */
  | 'ObjectChanged'
  /**
   * The server answered, but not as a granary cache server does: a 4xx or 2xx whose body is not granary's JSON
   * (an S3 server's XML, a web page). The URL names the wrong port or host.
   */
  | 'NotGranary';

/** What a PeerError may carry besides its code, message and status. */
export interface PeerErrorDetails {
  cause?: unknown;
  /** How the exchange broke when no usable answer came (refused, timed out, reset), as src/net/errors.ts names it. */
  connection?: ConnectionErrorCode;
  /** The Content-Type of an answer that was not granary's (NotGranary). */
  contentType?: string;
}

/** A failed peer request, with a stable code, the HTTP status when there was one, and how the connection broke. */
export class PeerError extends Error {
  /** How the exchange broke when no usable answer came; undefined when the server answered (or it was aborted). */
  readonly connection: ConnectionErrorCode | undefined;
  /** The Content-Type of an answer that was not granary's, when it named one. */
  readonly contentType: string | undefined;

  constructor(
    readonly code: PeerErrorCode,
    message: string,
    readonly status?: number,
    details: PeerErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'PeerError';
    this.connection = details.connection;
    this.contentType = details.contentType;
  }
}

/** Options of a PeerClient; every default is documented here. */
export interface PeerClientOptions {
  /** The cluster token sent as a Bearer Authorization header. */
  token: string;
  /** How long to wait for the response's headers (connect included) before giving up (ms). Default 2 s. */
  headersTimeoutMs?: number;
  /** How long a whole request may take, body included (ms). Default 10 s: 4 MiB at 3 Mbit/s. */
  requestTimeoutMs?: number;
  /** Sockets per peer kept open for reuse. Default 32 (a mount's fetch limit). */
  maxSocketsPerPeer?: number;
}

/** A block's bytes and where its owner found them. */
export interface FetchedBlock {
  data: Buffer;
  servedFrom: ServedFrom;
}

const DEFAULTS = { headersTimeoutMs: 2000, requestTimeoutMs: 10_000, maxSocketsPerPeer: 32 };

/**
 * Longest an idle keep-alive socket of the JSON calls is kept. A server that announces a shorter idle timeout
 * (Keep-Alive: timeout=N, as the cache server does) has its sockets dropped a second before it (http.Agent does
 * that only when it has a timeout of its own to shorten).
 */
const AGENT_IDLE_TIMEOUT_MS = 60_000;

/** Errors of a reused keep-alive socket that the server closed as the request went out: worth one more try on a new one. */
const STALE_SOCKET_ERRORS = new Set(['ECONNRESET', 'EPIPE']);

const SERVED_FROM_NAMES = new Set<string>(SERVED_FROM);

/**
 * What a failed raw exchange with an owner means to a reader. No connection or no answer in time is TimedOut
 * (a busy server accepts late: a probe tells it from a dead one); everything else is Unavailable.
 */
const PEER_ERROR_OF: Record<ConnectionErrorCode, PeerErrorCode> = {
  ConnectTimeout: 'TimedOut',
  HeadersTimeout: 'TimedOut',
  BodyTimeout: 'TimedOut',
  ConnectionRefused: 'Unavailable',
  ConnectFailed: 'Unavailable',
  ConnectionReset: 'Unavailable',
  TlsRefused: 'Unavailable',
  ShortBody: 'Unavailable',
  BadHead: 'Unavailable',
  BadBody: 'Unavailable',
};

/** Talks to cache servers over HTTP/1.1 keep-alive. */
export class PeerClient {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly options: Required<PeerClientOptions>;
  private readonly connections: RawHttpPool;

  constructor(options: PeerClientOptions) {
    this.options = { ...DEFAULTS, ...options };
    const agentOptions = { keepAlive: true, maxSockets: this.options.maxSocketsPerPeer, maxFreeSockets: this.options.maxSocketsPerPeer, scheduling: 'lifo' as const, timeout: AGENT_IDLE_TIMEOUT_MS };
    this.httpAgent = new http.Agent(agentOptions);
    this.httpsAgent = new https.Agent(agentOptions);
    this.connections = new RawHttpPool(this.options.maxSocketsPerPeer);
  }

  /** The bytes `range` of the block `ref` from `peer`, read into `into` when given (it must be range-sized). */
  async fetchBlock(peer: string, ref: BlockRef, range: ByteRange, options: { into?: Buffer; signal?: AbortSignal } = {}): Promise<FetchedBlock> {
    const url = parsePeer(peer);
    if (url.protocol === 'http:') return this.fetchBlockRaw(url, ref, range, options);
    const length = range.end - range.start;
    const { response, done } = await this.request(peer, 'GET', `${PATHS.block}?${blockQuery(ref, range)}`, options.signal);
    try {
      const servedFrom = String(response.headers[HEADERS.servedFrom] ?? '');
      if (!SERVED_FROM_NAMES.has(servedFrom)) throw new PeerError('Unavailable', `${peer} answered a block without a valid ${HEADERS.servedFrom} header`);
      const declared = Number(response.headers['content-length']);
      if (declared !== length) throw new PeerError('Unavailable', `${peer} answered ${declared} bytes for a ${length}-byte range`);
      const data = await readInto(response, options.into ?? Buffer.allocUnsafe(length), peer);
      return { data, servedFrom: servedFrom as ServedFrom };
    } finally {
      done();
    }
  }

  /** fetchBlock over a pooled connection that reads the body straight into the block buffer (src/net/raw-http.ts). */
  private async fetchBlockRaw(peer: URL, ref: BlockRef, range: ByteRange, options: { into?: Buffer; signal?: AbortSignal }): Promise<FetchedBlock> {
    const length = range.end - range.start;
    const into = options.into ?? Buffer.allocUnsafe(length);
    const { signal } = options;
    const name = peer.origin;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    // Rejects on the first of: the caller's abort, no response head in time, the whole body not in time.
    const cancel = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new PeerError('TimedOut', `GET ${PATHS.block} from ${name} took more than ${this.options.requestTimeoutMs} ms`)), this.options.requestTimeoutMs);
      onAbort = () => reject(new PeerError('Unavailable', `GET ${PATHS.block} from ${name} was aborted`, undefined, { cause: signal?.reason }));
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    cancel.catch(() => undefined);
    try {
      const response = await this.connections.get(peer, `${PATHS.block}?${blockQuery(ref, range)}`, { authorization: authorization(this.options.token) }, into, this.options.headersTimeoutMs, cancel).catch((error: unknown) => {
        if (error instanceof PeerError) throw error;
        if (isConnectionError(error, 'HeadersTimeout')) throw new PeerError('TimedOut', `${name} did not answer GET ${PATHS.block} within ${this.options.headersTimeoutMs} ms`, undefined, { cause: error, connection: error.code });
        const code = isConnectionError(error) ? PEER_ERROR_OF[error.code] : 'Unavailable';
        throw new PeerError(code, `GET ${PATHS.block} from ${name} failed: ${(error as Error).message}`, undefined, { cause: error, ...(isConnectionError(error) && { connection: error.code }) });
      });
      if (response.status < 200 || response.status >= 300) throw errorFrom(name, response.status, response.body, response.headers.get('content-type'));
      const servedFrom = response.headers.get(HEADERS.servedFrom) ?? '';
      if (!SERVED_FROM_NAMES.has(servedFrom)) throw new PeerError('Unavailable', `${name} answered a block without a valid ${HEADERS.servedFrom} header`);
      return { data: response.body, servedFrom: servedFrom as ServedFrom };
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Asks `peer` to cache the block `ref` (warm-up); resolves with where it was found. */
  async load(peer: string, ref: BlockRef, signal?: AbortSignal): Promise<LoadResult> {
    return this.json<LoadResult>(peer, 'POST', `${PATHS.load}?${blockQuery(ref)}`, signal);
  }

  /** The server's capacity, endpoint and version; rejects when it is down or not ready, NotGranary when the answer is not a ServerInfo. */
  async info(peer: string, signal?: AbortSignal): Promise<ServerInfo> {
    const info = await this.json<Partial<Record<keyof ServerInfo, unknown>> | null>(peer, 'GET', PATHS.info, signal);
    const numbers = [info?.capacityBytes, info?.ramBytes, info?.diskBytes];
    if (!numbers.every((value) => typeof value === 'number') || typeof info?.endpoint !== 'string' || typeof info.version !== 'string') {
      throw new PeerError('NotGranary', `${peer} answered ${PATHS.info} with JSON that is not a granary cache server's info`, 200, { contentType: 'application/json' });
    }
    return info as ServerInfo;
  }

  /** Closes idle sockets. */
  close(): void {
    this.connections.close();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private async json<T>(peer: string, method: string, path: string, signal?: AbortSignal): Promise<T> {
    const { response, done } = await this.request(peer, method, path, signal);
    try {
      const body = await readAll(response, 1024 * 1024, peer);
      return JSON.parse(body.toString('utf8')) as T;
    } catch (error) {
      if (error instanceof PeerError) throw error;
      const contentType = response.headers['content-type'];
      throw new PeerError('NotGranary', `${peer} answered ${path} with a body that is not JSON${contentType ? ` (${contentType})` : ''}`, response.statusCode, { cause: error, ...(contentType && { contentType }) });
    } finally {
      done();
    }
  }

  /**
   * Sends one request and resolves with a 2xx response whose body the caller must read, then call done().
   * A non-2xx answer is read and turned into a PeerError. The request timeout covers the body too. A reused
   * keep-alive socket that fails before any answer (the server closed it while idle) is retried once.
   */
  private request(peer: string, method: string, path: string, signal?: AbortSignal, retryStale = true): Promise<{ response: http.IncomingMessage; done: () => void }> {
    return new Promise((resolve, reject) => {
      let url: URL;
      try {
        url = new URL(path, peer);
      } catch (error) {
        reject(new PeerError('Rejected', `"${peer}" is not a cache server URL`, undefined, { cause: error }));
        return;
      }
      const secure = url.protocol === 'https:';
      const request = (secure ? https : http).request(url, {
        method,
        agent: secure ? this.httpsAgent : this.httpAgent,
        headers: { authorization: authorization(this.options.token), ...(method === 'POST' && { 'content-length': '0' }) },
      });
      let settled = false;
      const fail = (error: PeerError) => {
        request.destroy(error);
        if (!settled) {
          settled = true;
          cleanup();
          reject(error);
        }
      };
      const headersTimer = setTimeout(() => fail(new PeerError('TimedOut', `${peer} did not answer ${method} ${url.pathname} within ${this.options.headersTimeoutMs} ms`, undefined, { connection: 'HeadersTimeout' })), this.options.headersTimeoutMs);
      const requestTimer = setTimeout(() => fail(new PeerError('TimedOut', `${method} ${url.pathname} from ${peer} took more than ${this.options.requestTimeoutMs} ms`)), this.options.requestTimeoutMs);
      const onAbort = () => fail(new PeerError('Unavailable', `${method} ${url.pathname} from ${peer} was aborted`, undefined, { cause: signal?.reason }));
      const cleanup = () => {
        clearTimeout(headersTimer);
        signal?.removeEventListener('abort', onAbort);
      };
      const done = () => {
        clearTimeout(requestTimer);
        cleanup();
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (settled) return;
        settled = true;
        done();
        if (retryStale && request.reusedSocket && STALE_SOCKET_ERRORS.has(error.code ?? '')) {
          resolve(this.request(peer, method, path, signal, false));
          return;
        }
        reject(error instanceof PeerError ? error : new PeerError('Unavailable', `${method} ${url.pathname} from ${peer} failed: ${error.message}`, undefined, { cause: error, connection: connectionCodeOf(error) }));
      });
      request.on('response', (response) => {
        clearTimeout(headersTimer);
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          settled = true;
          // From here the caller reads the body; an abort or timeout now destroys the response (readInto rejects).
          resolve({ response, done });
          return;
        }
        void readAll(response, 64 * 1024, peer)
          .then((body) => errorFrom(peer, status, body, response.headers['content-type']))
          .catch((error: unknown) => (error instanceof PeerError ? error : new PeerError('Unavailable', `${peer} answered ${status}`, status)))
          .then((error) => {
            settled = true;
            done();
            reject(error);
          });
      });
      request.end();
    });
  }
}

function parsePeer(peer: string): URL {
  try {
    return new URL(peer);
  } catch (error) {
    throw new PeerError('Rejected', `"${peer}" is not a cache server URL`, undefined, { cause: error });
  }
}

/** The message of granary's JSON error body, or undefined when `body` is not one. */
function granaryErrorMessage(body: Buffer): string | undefined {
  try {
    const message = (JSON.parse(body.toString('utf8')) as Partial<ErrorBody> | null)?.error?.message;
    return typeof message === 'string' ? message : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The PeerError of a non-2xx answer. A cache server answers every error with its JSON error body, so a 4xx
 * without one comes from something else on that port (an S3 server's XML 400, a proxy's 404 page): NotGranary,
 * its body left out. A 5xx without one stays Unavailable with the start of its text: a proxy in front of a cache
 * server answers so while the server is away.
 */
function errorFrom(peer: string, status: number, body: Buffer, contentType: string | undefined): PeerError {
  const message = granaryErrorMessage(body);
  if (message === undefined && status < 500) {
    const type = contentType ? ` ${contentType}` : '';
    return new PeerError('NotGranary', `${peer} answered ${status}${type} without granary's JSON error body: it is not a granary cache server`, status, { ...(contentType && { contentType }) });
  }
  const code: PeerErrorCode = status === 401 ? 'Unauthorized' : status === 404 || status === 412 ? 'ObjectChanged' : status >= 500 ? 'Unavailable' : 'Rejected';
  return new PeerError(code, `${peer} answered ${status}: ${message ?? body.toString('utf8').slice(0, 500)}`, status);
}

/** How a node:http request's error broke the exchange: refused, an answer that is not HTTP, reset after connecting, or no connection at all. */
function connectionCodeOf(error: NodeJS.ErrnoException): ConnectionErrorCode {
  if (error.code === 'ECONNREFUSED') return 'ConnectionRefused';
  // node:http's parser codes: what answered does not speak HTTP/1.x.
  if (error.code?.startsWith('HPE_')) return 'BadHead';
  return STALE_SOCKET_ERRORS.has(error.code ?? '') ? 'ConnectionReset' : 'ConnectFailed';
}

/** Copies the response body into `data`, which it must fill exactly. */
function readInto(response: http.IncomingMessage, data: Buffer, peer: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let filled = 0;
    response.on('data', (chunk: Buffer) => {
      if (filled + chunk.length > data.length) {
        response.destroy(new PeerError('Unavailable', `${peer} sent more than the ${data.length} bytes asked for`));
        return;
      }
      chunk.copy(data, filled);
      filled += chunk.length;
    });
    response.once('end', () => (filled === data.length ? resolve(data) : reject(new PeerError('Unavailable', `${peer} ended the body after ${filled} of ${data.length} bytes`))));
    response.once('error', (error) => reject(error instanceof PeerError ? error : new PeerError('Unavailable', `reading a block from ${peer} failed: ${error.message}`, undefined, { cause: error })));
    response.once('aborted', () => reject(new PeerError('Unavailable', `${peer} closed the connection after ${filled} of ${data.length} bytes`)));
  });
}

/** The whole body, at most `limit` bytes. */
function readAll(response: http.IncomingMessage, limit: number, peer: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) response.destroy(new PeerError('Unavailable', `${peer} sent a body larger than ${limit} bytes`));
      else chunks.push(chunk);
    });
    response.once('end', () => resolve(Buffer.concat(chunks)));
    response.once('error', (error) => reject(error instanceof PeerError ? error : new PeerError('Unavailable', `reading from ${peer} failed: ${error.message}`, undefined, { cause: error })));
  });
}
