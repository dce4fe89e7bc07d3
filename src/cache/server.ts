// The cache server's HTTP front: the block protocol (protocol.ts) behind the cluster token, the probes
// and /metrics. Every request is validated and answered with a JSON error saying what to fix. Whoever
// reaches the port, token or not, meets bounds first: connections per source address and in all (refused
// at accept), time to send the headers, their size, time idle between requests.
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../log/logger';
import { isObjectStoreError } from '../objectstore/errors';
import { blockRange } from './block';
import type { BlockStore } from './block-store';
import { BoundedHttpServer, hasUnreadBody, type ServerLimits } from './bounded-http';
import type { CacheMetrics } from './metrics';
import { BadBlockQuery, BlockPastEnd, HEADERS, PATHS, parseBlockQuery, tokenMatches, type ErrorBody, type ServerInfo } from './protocol';

/** Runs a warm-up for POST /v1/warmup: calls `progress` with lines to stream, resolves with the summary line. */
export type WarmupRunner = (source: string, progress: (line: object) => void, signal: AbortSignal) => Promise<object>;

/** What a CacheServer serves and with what. */
export interface CacheServerOptions {
  store: BlockStore;
  token: string;
  /** The object store endpoint this server fills from (endpointIdentity form): blocks of any other are refused. */
  endpoint: string;
  /** The only buckets served (403 for others); empty: any. */
  buckets: readonly string[];
  limits: ServerLimits;
  info: () => ServerInfo;
  registry: Registry;
  metrics: CacheMetrics;
  logger: Logger;
  /** Serves POST /v1/warmup; without it the path answers 501. */
  warmup?: WarmupRunner;
  /** Brings the metrics up to date before each scrape. */
  beforeScrape?: () => void;
}

/** An HTTP answer decided by a handler. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const MAX_JSON_BODY = 64 * 1024;

/** The cache server: listen(), then close() at shutdown (stops accepting, waits for requests in flight). */
export class CacheServer {
  private readonly server: BoundedHttpServer;
  private readonly buckets: ReadonlySet<string>;
  private ready = false;
  private readonly closing = new AbortController();

  constructor(private readonly options: CacheServerOptions) {
    this.buckets = new Set(options.buckets);
    this.server = new BoundedHttpServer({
      limits: options.limits,
      handle: (request, response) => void this.handle(request, response),
      faultBody: ({ code, message }) => ({ contentType: 'application/json', body: JSON.stringify({ error: { code, message } } satisfies ErrorBody) }),
      onFault: ({ status }) => this.options.metrics.requests.inc({ path: 'other', code: String(status) }),
      refusals: { counter: options.metrics.refusedConnections, metricName: 'granary_cache_refused_connections_total', logger: options.logger },
    });
  }

  /** Connections open now. */
  get openConnections(): number {
    return this.server.openConnections;
  }

  /** Starts listening on host:port (port 0 picks one); resolves with the bound address. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return this.server.listen(host, port);
  }

  /** Marks the server ready (/readyz answers 200): call once the tiers are open. */
  markReady(): void {
    this.ready = true;
  }

  /** Stops accepting requests (/readyz turns 503 at once), aborts warm-ups, and resolves once open connections are closed. */
  async close(): Promise<void> {
    this.ready = false;
    this.closing.abort(new Error('the cache server is shutting down'));
    await this.server.close();
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://cache');
    const path = url.pathname;
    try {
      await this.route(path, url.searchParams, request, response);
    } catch (error) {
      const answer = this.toHttpError(error, path);
      if (!response.headersSent) {
        const body: ErrorBody = { error: { code: answer.code, message: answer.message } };
        const text = JSON.stringify(body);
        // Without the token, or with a body not read, the connection ends with the answer: Node would otherwise
        // read (and drop) whatever body the client announced before taking its next request.
        const close = answer.status === 401 || hasUnreadBody(request);
        response.writeHead(answer.status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          ...(answer.status === 401 && { 'www-authenticate': 'Bearer realm="granary-cache"' }),
          ...(close && { connection: 'close' }),
        });
        response.end(text);
      } else {
        response.destroy();
      }
    } finally {
      const known = (Object.values(PATHS) as string[]).includes(path) ? path : 'other';
      this.options.metrics.requests.inc({ path: known, code: String(response.statusCode) });
    }
  }

  private async route(path: string, query: URLSearchParams, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    switch (path) {
      case PATHS.healthz:
        return this.text(response, 200, 'ok\n');
      case PATHS.readyz:
        return this.ready ? this.text(response, 200, 'ready\n') : this.text(response, 503, 'not ready\n');
      case PATHS.metrics: {
        this.options.beforeScrape?.();
        const text = await this.options.registry.metrics();
        response.writeHead(200, { 'content-type': this.options.registry.contentType });
        response.end(text);
        return;
      }
    }
    // Everything below serves data or does work: the token first, before even looking at the request.
    if (!tokenMatches(request.headers.authorization, this.options.token)) {
      this.options.metrics.unauthorized.inc();
      throw new HttpError(401, 'Unauthorized', 'a valid cluster token is required: send "Authorization: Bearer <token>" with the token from the cache token Secret');
    }
    switch (path) {
      case PATHS.block:
        this.expectMethod(request, 'GET');
        return this.serveBlock(query, response);
      case PATHS.load:
        this.expectMethod(request, 'POST');
        return this.load(query, response);
      case PATHS.info:
        this.expectMethod(request, 'GET');
        return this.json(response, 200, this.options.info());
      case PATHS.warmup:
        this.expectMethod(request, 'POST');
        return this.warmup(request, response);
      default:
        throw new HttpError(404, 'NotFound', `no such path ${path}; the cache serves ${Object.values(PATHS).join(', ')}`);
    }
  }

  private async serveBlock(query: URLSearchParams, response: http.ServerResponse): Promise<void> {
    this.expectReady();
    const { ref, range } = parseBlockQuery(query, true);
    this.expectEndpoint(ref.endpoint);
    this.expectBucket(ref.bucket);
    const { data, servedFrom } = await this.options.store.read(ref);
    const block = blockRange(ref);
    if (data.length !== block.end - block.start) throw new HttpError(502, 'Internal', `the cached block holds ${data.length} bytes, ${block.end - block.start} expected`);
    const body = data.subarray(range.start - block.start, range.end - block.start);
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, [HEADERS.servedFrom]: servedFrom, [HEADERS.blockLength]: data.length });
    response.end(body);
    this.options.metrics.servedBytes.inc({ from: servedFrom }, body.length);
  }

  private async load(query: URLSearchParams, response: http.ServerResponse): Promise<void> {
    this.expectReady();
    const { ref } = parseBlockQuery(query, false);
    this.expectEndpoint(ref.endpoint);
    this.expectBucket(ref.bucket);
    this.json(response, 200, await this.options.store.load(ref));
  }

  private async warmup(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    this.expectReady();
    const { warmup } = this.options;
    if (!warmup) throw new HttpError(501, 'Unimplemented', 'this server does not run warm-ups');
    const body = await readJson(request);
    const source = typeof body === 'object' && body !== null ? (body as { source?: unknown }).source : undefined;
    if (typeof source !== 'string' || !/^s3:\/\/[^/]+/.test(source)) {
      throw new HttpError(400, 'InvalidArgument', 'the body must be JSON {"source": "s3://BUCKET/PREFIX"}');
    }
    this.expectBucket(/^s3:\/\/([^/]+)/.exec(source)?.[1] ?? '');
    // Progress streams as NDJSON, one line per update, the summary last; a client that goes away stops it.
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, this.closing.signal]);
    response.once('close', () => stop.abort(new Error('the client went away')));
    let started = false;
    const line = (value: object) => {
      if (!started) {
        response.writeHead(200, { 'content-type': 'application/x-ndjson' });
        started = true;
      }
      response.write(`${JSON.stringify(value)}\n`);
    };
    try {
      const summary = await warmup(source, line, signal);
      line(summary);
      response.end();
    } catch (error) {
      if (!started) throw error;
      line({ error: { code: 'WarmupFailed', message: (error as Error).message } });
      response.end();
    }
  }

  private expectMethod(request: http.IncomingMessage, method: string): void {
    if (request.method !== method) throw new HttpError(405, 'MethodNotAllowed', `use ${method} for this path`);
  }

  private expectReady(): void {
    if (!this.ready) throw new HttpError(503, 'Unavailable', 'the cache server is starting or stopping; read from the object store meanwhile');
  }

  private expectEndpoint(endpoint: string): void {
    if (endpoint !== this.options.endpoint) {
      throw new HttpError(421, 'WrongEndpoint', `this cache fills from ${this.options.endpoint || 'the AWS default endpoint'}, not ${endpoint || 'the AWS default endpoint'}: give the mount and the cache the same AWS_ENDPOINT_URL`);
    }
  }

  private expectBucket(bucket: string): void {
    if (this.buckets.size > 0 && !this.buckets.has(bucket)) {
      throw new HttpError(403, 'BucketNotServed', `this cache serves only the buckets ${[...this.buckets].join(', ')} (--buckets, chart value cache.buckets), not "${bucket}": add it there, or read it from the object store directly`);
    }
  }

  /**
   * The one mapping from what went wrong to the answer: the request's own faults are 4xx (the mount then reads
   * the object store itself and meets the same fault there), the object store's failures 502.
   */
  private toHttpError(error: unknown, path: string): HttpError {
    if (error instanceof HttpError) return error;
    if (error instanceof BlockPastEnd) return new HttpError(416, 'BlockPastEnd', error.message);
    if (error instanceof BadBlockQuery) return new HttpError(400, 'InvalidArgument', error.message);
    const message = (error as Error).message;
    if (isObjectStoreError(error, 'NoSuchBucket')) return new HttpError(404, 'NoSuchBucket', message);
    if (isObjectStoreError(error, 'NotFound')) return new HttpError(404, 'ObjectNotFound', message);
    if (isObjectStoreError(error, 'PreconditionFailed')) return new HttpError(412, 'ObjectChanged', message);
    if (isObjectStoreError(error, 'InvalidArgument')) {
      // The origin's 416: the block starts past the end of the object the ETag names (its size in the query was wrong).
      if (originStatus(error) === 416) return new HttpError(416, 'BlockPastEnd', message);
      return new HttpError(400, 'OriginRefused', message);
    }
    if (isObjectStoreError(error, 'AccessDenied')) return new HttpError(502, 'OriginRefused', message);
    this.options.logger.warn({ err: error, path }, 'cache request failed');
    return new HttpError(502, 'OriginUnavailable', `filling the block from the object store failed: ${message}`);
  }

  private text(response: http.ServerResponse, status: number, text: string): void {
    response.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
    response.end(text);
  }

  private json(response: http.ServerResponse, status: number, value: unknown): void {
    const text = JSON.stringify(value);
    response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    response.end(text);
  }
}

/** The HTTP status the object store answered, when the error's cause kept it (the SDK's and the lean GET's errors do). */
function originStatus(error: Error): number | undefined {
  return (error.cause as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function readJson(request: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_JSON_BODY) reject(new HttpError(413, 'TooLarge', `the body is larger than ${MAX_JSON_BODY} bytes`));
      else chunks.push(chunk);
    });
    request.once('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new HttpError(400, 'InvalidArgument', 'the body is not JSON'));
      }
    });
    request.once('error', reject);
  });
}
