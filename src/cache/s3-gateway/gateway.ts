// The S3 gateway: a read-only S3 API on its own port of the cache server, for the readers that speak S3 instead of
// reading a mount (SDK model loaders, boto3, rclone). Every request is signed (SigV4, header or presigned) with an
// access key from the keys file and judged against that key's grants before anything else; objects come through
// the ring (one origin fill per block in the cluster), listings and HEADs are the origin's, passed through.
import { randomBytes } from 'node:crypto';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import type { BlockFetcher } from '../../blocks/block-fetcher';
import type { Logger } from '../../log/logger';
import type { ObjectPart } from '../../objectstore/s3';
import type { ListOptions, ListPage, ObjectInfo } from '../../objectstore/store';
import { BoundedHttpServer, hasUnreadBody, type ServerLimits, type TlsIdentity } from '../bounded-http';
import { mayList, mayLocate, mayRead, type AccessKeys, type Grant } from './access-keys';
import { errorDocument, errorReply, S3Error } from './error-reply';
import { bucketLocationXml, listObjectsV1Xml, listObjectsV2Xml, originListOptionsForV1 } from './list-reply';
import { objectStoreFailure, replyObject } from './object-reply';
import { parseS3Request, resolveRange, unsupportedError, type S3Request } from './s3-request';
import { SigV4Verifier } from './sigv4-verify';
import { VersionCache } from './version-cache';

/** Object versions kept at most: far more than the objects a node's readers download within a version's lifetime. */
const VERSIONS_KEPT = 10_000;

/** What the gateway reads from the object store, with the cache server's own credentials. */
export interface GatewayOrigin {
  head(bucket: string, key: string, signal: AbortSignal): Promise<ObjectInfo>;
  /** The origin's HEAD of one part: the object and where the part lies. */
  headPart(bucket: string, key: string, partNumber: number, signal: AbortSignal): Promise<ObjectPart>;
  list(bucket: string, options: ListOptions, signal: AbortSignal): Promise<ListPage>;
  /** The ring's fetcher of the bucket's blocks. */
  fetcherOf(bucket: string): BlockFetcher;
}

/** What an S3Gateway serves with. */
export interface S3GatewayOptions {
  /** The access keys in force now (they may change while the gateway runs: keys-reloader.ts). */
  keys: () => AccessKeys;
  /** What GetBucketLocation answers. */
  region: string;
  virtualHostSuffixes: readonly string[];
  /** The cache's --buckets: the only buckets served (empty: any a grant names). */
  buckets: readonly string[];
  limits: ServerLimits;
  origin: GatewayOrigin;
  blockSize: number;
  readaheadBlocks: number;
  /** How long an object's version (the origin's HEAD) answers the requests that follow it; 0: a HEAD per request. */
  versionTtlMs: number;
  /** Serve HTTPS with this certificate and key; plain HTTP without. */
  tls?: TlsIdentity;
  registry: Registry;
  logger: Logger;
  /** Now, for the signatures' clocks (tests move it). */
  clock?: () => Date;
}

/** The gateway's counters, on the cache server's registry. */
class GatewayMetrics {
  readonly requests: Counter<'operation' | 'code'>;
  readonly sentBytes: Counter;
  readonly refused: Counter<'cap'>;
  readonly versionLookups: Counter<'answer'>;

  constructor(registry: Registry) {
    this.requests = new Counter({ name: 'granary_s3_gateway_requests_total', help: 'S3 API requests answered, by operation and HTTP status', labelNames: ['operation', 'code'], registers: [registry] });
    this.sentBytes = new Counter({ name: 'granary_s3_gateway_sent_bytes_total', help: 'Object bytes the S3 API sent to clients', registers: [registry] });
    this.versionLookups = new Counter({ name: 'granary_s3_gateway_version_lookups_total', help: 'Object versions GetObject and HeadObject needed, by who answered: the origin (a HEAD sent for the request) or cache (kept from a recent HEAD, or shared with one in flight)', labelNames: ['answer'], registers: [registry] });
    for (const answer of ['origin', 'cache']) this.versionLookups.inc({ answer }, 0);
    this.refused = new Counter({ name: 'granary_s3_gateway_refused_connections_total', help: 'Connections to the S3 API closed at accept, by the cap they went over', labelNames: ['cap'], registers: [registry] });
  }
}

/** The read-only S3 API: listen(), then close() at shutdown. */
export class S3Gateway {
  private readonly server: BoundedHttpServer;
  private readonly verifier: SigV4Verifier;
  private readonly metrics: GatewayMetrics;
  private readonly buckets: ReadonlySet<string>;
  private readonly versions: VersionCache;

  constructor(private readonly options: S3GatewayOptions) {
    this.verifier = new SigV4Verifier((accessKeyId) => options.keys().secretOf(accessKeyId));
    this.metrics = new GatewayMetrics(options.registry);
    this.buckets = new Set(options.buckets);
    this.versions = new VersionCache((bucket, key, signal) => options.origin.head(bucket, key, signal), { ttlMs: options.versionTtlMs, maxEntries: VERSIONS_KEPT });
    this.server = new BoundedHttpServer({
      limits: options.limits,
      handle: (request, response) => void this.handle(request, response),
      faultBody: ({ code, message }) => ({ contentType: 'application/xml', body: errorDocument(code, message) }),
      onFault: ({ status }) => this.metrics.requests.inc({ operation: 'Unparsable', code: String(status) }),
      refusals: { counter: this.metrics.refused, metricName: 'granary_s3_gateway_refused_connections_total', logger: options.logger },
      ...(options.tls && { tls: options.tls }),
    });
  }

  /** Starts listening on host:port (port 0 picks one); resolves with the bound address. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return this.server.listen(host, port);
  }

  /** New HTTPS connections use this certificate and key (a rotated Secret). */
  setIdentity(identity: TlsIdentity): void {
    this.server.setIdentity(identity);
  }

  /** Stops accepting and resolves once the connections open now have closed. */
  close(): Promise<void> {
    return this.server.close();
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    const target = request.url ?? '/';
    const question = target.indexOf('?');
    const path = question < 0 ? target : target.slice(0, question);
    const query = question < 0 ? '' : target.slice(question + 1);
    const headers = request.headers as Record<string, string | undefined>;
    let operation = 'Unknown';
    try {
      // Who is asking comes first: nothing about a resource is said to an unsigned request.
      const caller = this.verifier.verify({ method: request.method ?? 'GET', path, query, headers }, (this.options.clock ?? (() => new Date()))());
      const parsed = parseS3Request({ method: request.method ?? 'GET', path, query, headers }, { virtualHostSuffixes: this.options.virtualHostSuffixes });
      operation = parsed.kind;
      await this.serve(parsed, this.options.keys().grantsOf(caller.accessKeyId), request, response, requestId);
    } catch (error) {
      this.answerError(error, request, response, path, requestId);
    } finally {
      this.metrics.requests.inc({ operation, code: String(response.statusCode) });
    }
  }

  private async serve(parsed: S3Request, grants: readonly Grant[], request: http.IncomingMessage, response: http.ServerResponse, requestId: string): Promise<void> {
    const { origin } = this.options;
    const stop = new AbortController();
    response.once('close', () => stop.abort(new Error('the client went away')));
    switch (parsed.kind) {
      case 'GetObject':
      case 'HeadObject': {
        this.expectBucket(parsed.bucket);
        if (!mayRead(grants, parsed.bucket, parsed.key)) throw new S3Error('AccessDenied', `this access key may not read ${parsed.bucket}/${parsed.key}: its grants do not cover it`);
        return replyObject(parsed, response, requestId, stop.signal, {
          head: async (bucket, key, signal, fresh) => {
            const lookup = await this.versions.lookup(bucket, key, signal, fresh);
            this.metrics.versionLookups.inc({ answer: lookup.fromOrigin ? 'origin' : 'cache' });
            return lookup;
          },
          headPart: (bucket, key, partNumber, signal) => origin.headPart(bucket, key, partNumber, signal),
          fetcherOf: (bucket) => origin.fetcherOf(bucket),
          rangeOf: (size) => resolveRange(parsed.range, size),
          blockSize: this.options.blockSize,
          readaheadBlocks: this.options.readaheadBlocks,
          onBytes: (bytes) => this.metrics.sentBytes.inc(bytes),
        });
      }
      case 'ListObjectsV2':
      case 'ListObjects': {
        this.expectBucket(parsed.bucket);
        if (!mayList(grants, parsed.bucket, parsed.prefix)) throw new S3Error('AccessDenied', `this access key may not list ${parsed.bucket} under "${parsed.prefix}": list a prefix inside one of its grants`);
        const options: ListOptions =
          parsed.kind === 'ListObjectsV2'
            ? {
                prefix: parsed.prefix,
                maxKeys: parsed.maxKeys,
                ...(parsed.delimiter !== undefined && { delimiter: parsed.delimiter }),
                ...(parsed.continuationToken !== undefined && { continuationToken: parsed.continuationToken }),
                ...(parsed.startAfter !== undefined && { startAfter: parsed.startAfter }),
              }
            : originListOptionsForV1(parsed);
        const page = parsed.maxKeys === 0 ? { objects: [], commonPrefixes: [] } : await origin.list(parsed.bucket, options, stop.signal).catch((error: unknown) => {
          throw objectStoreFailure(error, parsed.bucket, parsed.prefix);
        });
        return this.xml(response, 200, parsed.kind === 'ListObjectsV2' ? listObjectsV2Xml(parsed, page) : listObjectsV1Xml(parsed, page), requestId);
      }
      case 'GetBucketLocation':
        this.expectBucket(parsed.bucket);
        if (!mayLocate(grants, parsed.bucket)) throw new S3Error('AccessDenied', `this access key has no grant on the bucket ${parsed.bucket}`);
        return this.xml(response, 200, bucketLocationXml(this.options.region), requestId);
      case 'HeadBucket':
        this.expectBucket(parsed.bucket);
        if (!mayLocate(grants, parsed.bucket)) throw new S3Error('AccessDenied', `this access key has no grant on the bucket ${parsed.bucket}`);
        response.writeHead(200, { 'x-amz-bucket-region': this.options.region, 'x-amz-request-id': requestId });
        response.end();
        return;
      case 'ListBuckets':
        throw new S3Error('AccessDenied', 'the granary gateway does not list buckets: address a bucket your access key has a grant on');
      case 'Unsupported':
        throw unsupportedError(parsed);
    }
  }

  private expectBucket(bucket: string): void {
    if (this.buckets.size > 0 && !this.buckets.has(bucket)) {
      throw new S3Error('AccessDenied', `this cache serves only the buckets ${[...this.buckets].join(', ')} (--buckets, chart value cache.buckets), not ${bucket}`);
    }
  }

  private xml(response: http.ServerResponse, status: number, body: string, requestId: string): void {
    response.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), 'x-amz-request-id': requestId });
    response.end(body);
  }

  /** Answers an error as S3 does (XML, its status), or cuts the connection when the status is already sent. */
  private answerError(error: unknown, request: http.IncomingMessage, response: http.ServerResponse, resource: string, requestId: string): void {
    const s3Error = error instanceof S3Error ? error : new S3Error('InternalError', `the gateway failed: ${(error as Error).message}`, { cause: error });
    if (s3Error.code === 'InternalError' || s3Error.code === 'ServiceUnavailable') this.options.logger.warn({ err: error, resource, requestId }, 'an S3 request failed');
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const reply = errorReply(s3Error, { method: request.method ?? 'GET', resource, requestId });
    // A body not read (a write's payload) ends the connection with the answer, as the cache server does.
    response.writeHead(reply.status, { ...reply.headers, ...(hasUnreadBody(request) && { connection: 'close' }) });
    response.end(reply.body);
  }

}
