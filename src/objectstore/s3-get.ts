import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ObjectStoreError } from './errors';
import { isConnectionError, isTransientConnectionFailure } from '../net/errors';
import { RawHttpPool } from '../net/raw-http';
import { SigV4Signer, uriEncode, type SigningCredentials } from './sigv4';
import type { ByteRange, GetOptions, GetResult, ListOptions, ListPage, RangeRead } from './store';
import { listQuery, parseListPage } from './list-xml';
import { backoffDelay } from '../util/backoff';
import { sleep } from '../util/sleep';

/**
 * The lean GET: one signed HTTP request per try, sent straight on the store's keep-alive agents, for object reads
 * and for listing pages (ListObjectsV2 is a GET of the bucket too).
 *
 * Why: every data read of the filesystem is a ranged GetObject, and through the SDK each one costs ~1.5 ms of CPU
 * (middleware stack, schema serde, endpoint rules, logging filters, retry plumbing) on top of the signing that is
 * the only part the request needs. Everything that must match the SDK is taken from the SDK's own client config:
 * the credential provider (static, env, profile, web identity, instance role, with its caching and refresh), the
 * region and the clock-skew offset; the signature is src/objectstore/sigv4.ts's (the SDK's bytes, at a fraction of its cost).
 */

/** The largest error body read to find its `<Code>`; S3 error documents are a few hundred bytes. */
export const MAX_ERROR_BODY_BYTES = 16 * 1024;

/** Backoff base of the SDK's standard retry mode (ms): a try n waits a random time up to base * 2^n. */
export const RETRY_DELAY_BASE_MS = 100;

/** Backoff base after a throttling answer (SlowDown, 429), as in the SDK's standard retry mode. */
export const THROTTLING_RETRY_DELAY_BASE_MS = 500;

/** Longest wait between two tries, as in the SDK's standard retry mode. */
export const MAX_RETRY_DELAY_MS = 20_000;

/** Retry tokens a store starts with (the SDK's retry quota): an outage drains them and stops retry storms. */
export const INITIAL_RETRY_TOKENS = 500;

/** Tokens one retry takes; a retry after a timeout takes TIMEOUT_RETRY_COST. */
export const RETRY_COST = 5;

/** Tokens a retry after a timeout or a broken connection takes. */
export const TIMEOUT_RETRY_COST = 10;

/** The payload hash header value for a request signed without hashing its (empty) body. */
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

/** Error codes S3 uses for "slow down", which back off from the longer throttling base. */
const THROTTLING_CODES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'ThrottledException', 'RequestThrottled', 'RequestLimitExceeded', 'TooManyRequestsException', 'BandwidthLimitExceeded']);

/** Error codes that are worth another try whatever the status. */
const TRANSIENT_CODES = new Set([...THROTTLING_CODES, 'RequestTimeout', 'RequestTimeoutException', 'InternalError', 'ServiceUnavailable']);

/** Socket errors after which another try may succeed. */
const RETRYABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND']);

/** AWS regions whose S3 endpoint is `s3.<region>.amazonaws.com` (the aws and aws-us-gov partitions). */
const AWS_COMMERCIAL_REGION = /^(us|eu|ap|sa|ca|me|af|il|mx)(-gov)?-[a-z]+-\d+$/;

/** A bucket name that can be the first label of a host name (no dots, so TLS wildcard certificates match). */
const DNS_BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** What the lean GET needs from its store. */
export interface LeanGetOptions {
  client: S3Client;
  bucket: string;
  /** The custom endpoint, if any; absent means AWS S3 itself. */
  endpoint: string | undefined;
  forcePathStyle: boolean;
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
  /** Connections kept open per host by getInto(). */
  maxSockets: number;
  maxAttempts: number;
  /** Idle timeout: the longest a request or its body may go without a byte moving. */
  requestTimeoutMs: number;
  /** The longest a new connection may take to open. */
  connectTimeoutMs: number;
  /** getInto() over raw connections (src/net/raw-http.ts), which trust what httpsAgent trusts; false: through node:http(s). */
  rawReads: boolean;
  /** Maps a failure of `operation` ('get' or 'list') to the store's error (message with key, bucket, next step, no credentials). */
  toError(error: unknown, key: string, operation: 'get' | 'list'): ObjectStoreError;
}

/** Where requests for a bucket go: the origin, the path before the key, the host header and the signing region. */
export interface Target {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number | undefined;
  host: string;
  /** Already encoded, starts with `/`, ends with `/`. */
  pathPrefix: string;
  region: string;
}

/** A failed try: what the server answered (or the socket error), kept in the SDK error's shape for toObjectStoreError. */
class AttemptError extends Error {
  $metadata: { httpStatusCode?: number; attempts?: number };
  Code: string | undefined;
  code: string | undefined;
  /** For a failure without an answer: whether another try may succeed (false for an answer that is not HTTP, or not the range asked for). */
  readonly transient: boolean;
  constructor(name: string, message: string, options: { status?: number; code?: string; transient?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = name;
    this.Code = options.status !== undefined ? name : undefined;
    this.code = options.code;
    this.transient = options.transient ?? true;
    this.$metadata = { ...(options.status !== undefined && { httpStatusCode: options.status }) };
  }
}

/** What a lean request asks for: an object (get) or a listing page (list, `key` its prefix), and the query it sends. */
interface RequestOf {
  key: string;
  query: string;
  operation: 'get' | 'list';
}

/** One try of a GET: the request path, its signed headers, and how many tries this one makes (the first is 1). */
type Attempt<T> = (path: string, signed: Record<string, string>, tries: number) => Promise<T>;

/**
 * What a 2xx answer of `length` bytes to a ranged read says of the object: its size and ETag. Its Content-Range must
 * name exactly the range asked for; without one, the answer is the whole object (a server that ignores Range).
 */
export function rangeRead(contentRange: string | undefined, etag: string | undefined, length: number, asked: ByteRange): Omit<RangeRead, 'attempts'> {
  const answered = parseContentRange(contentRange);
  if (answered && (answered.range.start !== asked.start || answered.range.end !== asked.end)) {
    throw new AttemptError('NetworkError', `the server sent bytes ${answered.range.start}-${answered.range.end} for ${asked.start}-${asked.end}`);
  }
  return { size: answered?.size ?? length, etag: (etag ?? '').replace(/^"|"$/g, ''), range: answered?.range ?? asked };
}

/**
 * Copies a response body whose Content-Length is `declared` into `into`, which it must fill exactly. A length other
 * than into.length, or more bytes than that, fails for good (the answer is not the range asked for); a body that
 * ends early fails like a connection reset (ECONNRESET: the SDK's retry strategy and this module's both retry it);
 * an abort of `signal` destroys the body and rejects with its reason. No chunk is copied after it settles.
 */
export async function readBodyInto(body: Readable, declared: number | undefined, into: Buffer, signal: AbortSignal | undefined): Promise<void> {
  let filled = 0;
  const onAbort = () => body.destroy(signal?.reason instanceof Error ? signal.reason : new Error(String(signal?.reason)));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    signal?.throwIfAborted();
    if (declared !== into.length) throw new AttemptError('BadBody', `the server answered ${declared} bytes for a ${into.length}-byte range`, { transient: false });
    for await (const chunk of body as AsyncIterable<Buffer | string>) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (filled + bytes.length > into.length) throw new AttemptError('BadBody', `the server sent more than the ${into.length} bytes asked for`, { transient: false });
      bytes.copy(into, filled);
      filled += bytes.length;
    }
  } catch (error) {
    body.destroy();
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (filled !== into.length) throw new AttemptError('ShortBody', `the body ended after ${filled} of ${into.length} bytes`, { code: 'ECONNRESET' });
}

/** The encoded path of `key` (segments escaped, slashes kept), which is also its SigV4 canonical URI for S3. */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(uriEncode).join('/');
}

/** Parses `bytes 0-9/100` into the returned range and the object's size. */
export function parseContentRange(header: string | undefined): { range: ByteRange; size: number } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header ?? '');
  if (!match) return undefined;
  return { range: { start: Number(match[1]), end: Number(match[2]) + 1 }, size: Number(match[3]) };
}

/** The SDK's retry quota: retries take tokens, successes give some back, an empty bucket means no more retries. */
class RetryQuota {
  private tokens = INITIAL_RETRY_TOKENS;

  take(cost: number): boolean {
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }

  give(amount: number): void {
    this.tokens = Math.min(INITIAL_RETRY_TOKENS, this.tokens + amount);
  }
}

/** Reads at most MAX_ERROR_BODY_BYTES of an error answer; a longer one is cut (its connection is then dropped). */
async function readErrorBody(response: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response) {
    const data = chunk as Buffer;
    chunks.push(data);
    bytes += data.length;
    if (bytes >= MAX_ERROR_BODY_BYTES) {
      response.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY_BYTES).toString('utf8');
}

/** The largest listing page read: 1,000 entries of the longest keys S3 allows stay well below it. */
const MAX_LISTING_BYTES = 32 * 1024 * 1024;

/** Reads a listing answer's whole body as text; an abort of `signal` destroys it. */
async function readListing(response: http.IncomingMessage, signal: AbortSignal | undefined): Promise<string> {
  const onAbort = () => response.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of response) {
      chunks.push(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      if (bytes > MAX_LISTING_BYTES) throw new AttemptError('BadBody', `a listing page larger than ${MAX_LISTING_BYTES} bytes`, { transient: false });
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (error) {
    response.destroy();
    if (signal?.aborted) throw signal.reason ?? error;
    if (error instanceof AttemptError) throw error;
    // A body that breaks off is retried like a reset connection.
    throw new AttemptError('NetworkError', (error as Error).message, { code: 'ECONNRESET', cause: error });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** The text of the first `<tag>` of an XML error document. */
function xmlField(xml: string, tag: string): string | undefined {
  return new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];
}

/** The GETs of one store (objects, listing pages), signed with SigV4 from the SDK client's own credentials and sent without the SDK. */
export class LeanGet {
  private signer: SigV4Signer | undefined;
  private readonly quota = new RetryQuota();
  private target: Promise<Target | undefined> | undefined;
  /** Raw keep-alive connections for getInto(). */
  private readonly raw: RawHttpPool;

  constructor(private readonly options: LeanGetOptions) {
    // The raw connections keep the node:http path's bounds (connecting, then each body, may stall at most so long)
    // and trust the certificates its https agent does.
    const { ca } = options.httpsAgent.options;
    this.raw = new RawHttpPool(options.maxSockets, { connectTimeoutMs: options.connectTimeoutMs, bodyTimeoutMs: options.requestTimeoutMs, ...(ca !== undefined && { ca }) });
  }

  /** Gets the object, or returns undefined when the client is set up in a way this path does not address (use the SDK then). */
  async get(key: string, options: GetOptions): Promise<GetResult | undefined> {
    const target = await (this.target ??= this.resolveTarget());
    if (!target) return undefined;
    return this.withRetries(target, { key, query: '', operation: 'get' }, options, async (path, signed) => {
      const response = await this.send(target, path, signed, options.signal);
      const status = response.statusCode ?? 0;
      if (status === 200 || status === 206) return this.resultOf(response);
      throw await this.answerError(response);
    });
  }

  /**
   * One page of a ListObjectsV2 listing, parsed by src/objectstore/list-xml.ts instead of the SDK; undefined when the
   * client is set up in a way this path does not address.
   */
  async list(options: ListOptions, signal: AbortSignal | undefined): Promise<ListPage | undefined> {
    const target = await (this.target ??= this.resolveTarget());
    if (!target) return undefined;
    const query = listQuery(options);
    return this.withRetries(target, { key: options.prefix, query, operation: 'list' }, { ...(signal && { signal }) }, async (path, signed) => {
      const response = await this.send(target, `${path}?${query}`, signed, signal);
      const status = response.statusCode ?? 0;
      if (status !== 200) throw await this.answerError(response);
      const xml = await readListing(response, signal);
      try {
        return parseListPage(xml);
      } catch (error) {
        throw new AttemptError('BadBody', `the listing of ${JSON.stringify(options.prefix)} could not be read: ${(error as Error).message}`, { transient: false });
      }
    });
  }

  /**
   * Reads a range into `into` (exactly its size), the body inside each try, so that a body that breaks off is
   * retried like a failed request. The body is read over a raw keep-alive connection (TCP, or TLS for https),
   * straight into the buffer with no per-chunk allocation and no copy (see src/net/raw-http.ts for why); with
   * rawReads off, through node:http(s), its chunks copied in. Undefined when the client is set up in a way this
   * path does not address.
   */
  async getInto(key: string, into: Buffer, options: GetOptions & { range: ByteRange }): Promise<RangeRead | undefined> {
    const target = await (this.target ??= this.resolveTarget());
    if (!target) return undefined;
    const read = this.options.rawReads ? this.rawRead(target, into, options) : this.streamedRead(target, into, options);
    return this.withRetries(target, { key, query: '', operation: 'get' }, options, async (path, signed, attempts) => ({ ...(await read(path, signed, attempts)), attempts }));
  }

  /** One try of getInto() over a raw connection. */
  private rawRead(target: Target, into: Buffer, options: GetOptions & { range: ByteRange }): Attempt<Omit<RangeRead, 'attempts'>> {
    const origin = new URL(`${target.protocol}//${target.host}`);
    const { signal } = options;
    return async (path, signed) => {
      let onAbort: (() => void) | undefined;
      const cancel = new Promise<never>((_resolve, reject) => {
        onAbort = () => reject(signal?.reason ?? new Error('aborted'));
        if (signal?.aborted) onAbort();
        else signal?.addEventListener('abort', onAbort, { once: true });
      });
      cancel.catch(() => undefined);
      try {
        const { host: _host, ...headers } = signed;
        const response = await this.raw.get(origin, path, headers, into, this.options.requestTimeoutMs, cancel).catch((error: unknown) => {
          if (signal?.aborted) throw signal.reason ?? error;
          throw this.socketError(error);
        });
        if (response.status === 200 || response.status === 206) return rangeRead(response.headers.get('content-range'), response.headers.get('etag'), into.length, options.range);
        const xml = response.body.toString('utf8');
        const code = xmlField(xml, 'Code') ?? (http.STATUS_CODES[response.status] ?? `HTTP${response.status}`).replace(/\s+/g, '');
        throw new AttemptError(code, xmlField(xml, 'Message') ?? '', { status: response.status });
      } finally {
        if (onAbort) signal?.removeEventListener('abort', onAbort);
      }
    };
  }

  /** One try of getInto() through node:http(s): the request, then its body copied into `into`. */
  private streamedRead(target: Target, into: Buffer, options: GetOptions & { range: ByteRange }): Attempt<Omit<RangeRead, 'attempts'>> {
    return async (path, signed) => {
      const response = await this.send(target, path, signed, options.signal);
      const status = response.statusCode ?? 0;
      if (status !== 200 && status !== 206) throw await this.answerError(response);
      try {
        const read = rangeRead(response.headers['content-range'], response.headers.etag, into.length, options.range);
        await readBodyInto(response, Number(response.headers['content-length']), into, options.signal);
        return read;
      } catch (error) {
        response.destroy();
        throw error;
      }
    };
  }

  /** Closes the raw connections. */
  close(): void {
    this.raw.close();
  }

  /** Runs `attempt` with freshly signed headers until it succeeds, fails for good, or the tries or the retry quota are spent. */
  private async withRetries<T>(target: Target, what: RequestOf, options: GetOptions, attempt: Attempt<T>): Promise<T> {
    const { key, query, operation } = what;
    const { signal } = options;
    const headers: Record<string, string> = { host: target.host, 'x-amz-content-sha256': UNSIGNED_PAYLOAD };
    if (options.range) headers.range = `bytes=${options.range.start}-${options.range.end - 1}`;
    if (options.ifMatch !== undefined) headers['if-match'] = `"${options.ifMatch}"`;
    // A listing is a request of the bucket itself; `key` then only names the prefix in errors.
    const path = target.pathPrefix + (operation === 'list' ? '' : encodeKeyPath(key));
    for (let tries = 1; ; tries++) {
      signal?.throwIfAborted();
      let signed: Record<string, string>;
      try {
        signed = await this.sign(target, path, query, headers);
      } catch (error) {
        // Missing or unloadable credentials: final, as in the SDK (CredentialsProviderError becomes AccessDenied).
        throw this.options.toError(error, key, operation);
      }
      let failure: AttemptError;
      try {
        const result = await attempt(path, signed, tries);
        this.quota.give(tries === 1 ? 1 : RETRY_COST);
        return result;
      } catch (error) {
        if (signal?.aborted) throw signal.reason ?? error;
        failure = error instanceof AttemptError ? error : this.socketError(error);
      }
      failure.$metadata.attempts = tries;
      const delay = this.retryDelay(failure, tries);
      if (delay === undefined) throw this.options.toError(failure, key, operation);
      await sleep(delay, signal);
    }
  }

  /** How long to wait before another try, or undefined when the failure is final (or the tries or the quota are spent). */
  private retryDelay(failure: AttemptError, attempt: number): number | undefined {
    if (attempt >= this.options.maxAttempts) return undefined;
    const status = failure.$metadata.httpStatusCode;
    const throttled = status === 429 || THROTTLING_CODES.has(failure.name);
    const network = status === undefined;
    const retryable = network ? failure.transient : throttled || status >= 500 || TRANSIENT_CODES.has(failure.name);
    if (!retryable) return undefined;
    if (!this.quota.take(network ? TIMEOUT_RETRY_COST : RETRY_COST)) return undefined;
    const base = throttled ? THROTTLING_RETRY_DELAY_BASE_MS : RETRY_DELAY_BASE_MS;
    return backoffDelay({ baseMs: base, maxMs: MAX_RETRY_DELAY_MS, jitter: 'full' }, attempt);
  }

  /** The headers of one try, signed now with the provider's current credentials (a session token included). */
  private async sign(target: Target, path: string, query: string, headers: Record<string, string>): Promise<Record<string, string>> {
    const config = this.options.client.config;
    // The SDK's provider caches and refreshes what it resolves; a static identity may stand in its place.
    const provider = config.credentials as unknown as (() => Promise<SigningCredentials>) | SigningCredentials;
    const credentials = typeof provider === 'function' ? await provider() : provider;
    this.signer ??= new SigV4Signer(target.region, 's3');
    // The SDK's correction for a skewed local clock, learnt from earlier answers.
    return this.signer.sign({ method: 'GET', path, query, headers }, credentials, new Date(Date.now() + (config.systemClockOffset ?? 0)));
  }

  /** Sends one signed try; resolves with the response once its headers arrive. */
  private send(target: Target, path: string, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<http.IncomingMessage> {
    const { requestTimeoutMs, connectTimeoutMs } = this.options;
    const request = (target.protocol === 'https:' ? https.request : http.request)({
      method: 'GET',
      protocol: target.protocol,
      hostname: target.hostname,
      ...(target.port !== undefined && { port: target.port }),
      path,
      headers,
      agent: target.protocol === 'https:' ? this.options.httpsAgent : this.options.httpAgent,
      ...(signal && { signal }),
    });
    return new Promise((resolve, reject) => {
      let response: http.IncomingMessage | undefined;
      request.once('response', (answer) => {
        response = answer;
        resolve(answer);
      });
      request.once('error', reject);
      // An idle timeout, not a total one: it also cuts a body stream that stalls after get() returned, with this error.
      request.setTimeout(requestTimeoutMs, () => {
        const error = new AttemptError('TimeoutError', `no byte moved for ${requestTimeoutMs} ms`, { code: 'ETIMEDOUT' });
        response?.destroy(error);
        request.destroy(error);
      });
      request.once('socket', (socket) => {
        if (!socket.connecting || connectTimeoutMs >= requestTimeoutMs) return;
        const timer = setTimeout(() => {
          request.destroy(new AttemptError('TimeoutError', `connecting took longer than ${connectTimeoutMs} ms`, { code: 'ETIMEDOUT' }));
        }, connectTimeoutMs);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      request.end();
    });
  }

  private resultOf(response: http.IncomingMessage): GetResult {
    const contentRange = parseContentRange(response.headers['content-range']);
    const length = Number(response.headers['content-length'] ?? 0);
    const size = contentRange?.size ?? length;
    const etag = (response.headers.etag ?? '').replace(/^"|"$/g, '');
    return { body: response, size, etag, range: contentRange?.range ?? { start: 0, end: size } };
  }

  /** The failure an error answer describes: its XML `<Code>` and `<Message>`, else just its status. */
  private async answerError(response: http.IncomingMessage): Promise<AttemptError> {
    const status = response.statusCode ?? 0;
    const xml = await readErrorBody(response);
    const code = xmlField(xml, 'Code') ?? (http.STATUS_CODES[status] ?? `HTTP${status}`).replace(/\s+/g, '');
    const message = xmlField(xml, 'Message') ?? '';
    // Only the code and the human message are kept: some servers echo signing inputs in the rest of the body.
    return new AttemptError(code, message, { status });
  }

  private socketError(error: unknown): AttemptError {
    if (isConnectionError(error)) {
      // The raw connection's code names the failure; the socket's errno, when there was one, stays beside it.
      const cause = error.cause as { code?: unknown } | undefined;
      const errno = typeof cause?.code === 'string' ? cause.code : undefined;
      return new AttemptError(error.code, error.message, { ...(errno && { code: errno }), transient: isTransientConnectionFailure(error.code), cause: error });
    }
    const errno = typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : undefined;
    const message = error instanceof Error ? error.message : String(error);
    const name = errno && RETRYABLE_ERRNOS.has(errno) ? errno : 'NetworkError';
    return new AttemptError(name, message, { ...(errno && { code: errno }), cause: error });
  }

  /** The bucket's address, unless the client uses endpoint variants this path does not reproduce (FIPS, dual-stack, accelerate). */
  private async resolveTarget(): Promise<Target | undefined> {
    const config = this.options.client.config;
    const region = await config.region();
    if (await config.useFipsEndpoint() || await config.useDualstackEndpoint() || config.useAccelerateEndpoint) return undefined;
    return bucketTarget({ ...this.options, region });
  }
}

/**
 * Where requests for a bucket go, as the SDK's endpoint rules put a plain bucket: path-style on a custom endpoint
 * (a virtual host when path style is off), virtual-hosted on AWS, path-style for bucket names with dots (TLS
 * wildcard certificates cover one label). Undefined for what those rules treat specially (other partitions,
 * endpoints with user info or a query), which then stays with the SDK.
 */
export function bucketTarget(where: { bucket: string; endpoint: string | undefined; forcePathStyle: boolean; region: string }): Target | undefined {
  const { bucket, endpoint, forcePathStyle, region } = where;
  const virtualHost = !forcePathStyle && DNS_BUCKET.test(bucket);
  let url: URL;
  if (endpoint) {
    try {
      url = new URL(endpoint);
    } catch {
      return undefined;
    }
    if (url.username || url.password || url.search) return undefined;
  } else {
    if (!AWS_COMMERCIAL_REGION.test(region)) return undefined;
    url = new URL(`https://s3.${region}.amazonaws.com`);
  }
  const protocol = url.protocol === 'http:' ? 'http:' : url.protocol === 'https:' ? 'https:' : undefined;
  if (!protocol) return undefined;
  const basePath = url.pathname.replace(/\/+$/, '');
  const host = virtualHost ? `${bucket}.${url.host}` : url.host;
  const hostname = virtualHost ? `${bucket}.${url.hostname}` : url.hostname;
  return {
    protocol,
    hostname: hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? undefined : Number(url.port),
    host,
    pathPrefix: virtualHost ? `${basePath}/` : `${basePath}/${uriEncode(bucket)}/`,
    region,
  };
}
