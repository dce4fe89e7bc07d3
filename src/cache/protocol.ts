// The cache's HTTP protocol, shared by the server, the peer client and warm-up: paths, headers, the
// block query and its validation, the token check. Leaf module: imports only block.ts from cache/.
import { createHash, timingSafeEqual } from 'node:crypto';
import { bucketNameProblem } from '../objectstore/s3-url';
import { blockCount, type ByteRange } from '../blocks/block-math';
import { MAX_BLOCK_SIZE, MIN_BLOCK_SIZE } from '../blocks/block-size';
import { blockRange, type BlockRef } from './block';

/**
 * Paths served by a cache server. Every path but the probes and /metrics needs the cluster token.
 * - GET  BLOCK   + block query + start, end: the bytes [start, end) of the object, inside the block.
 * - POST LOAD    + block query: makes sure the block is cached (warm-up); answers LoadResult JSON.
 * - GET  INFO:   ServerInfo JSON (capacity for the ring's weights, endpoint, block size).
 * - POST WARMUP  with WarmupRequest JSON: warms a prefix through the ring; answers NDJSON progress lines.
 */
export const PATHS = {
  block: '/v1/block',
  load: '/v1/load',
  info: '/v1/info',
  warmup: '/v1/warmup',
  metrics: '/metrics',
  healthz: '/healthz',
  readyz: '/readyz',
} as const;

/** Response headers of a block. */
export const HEADERS = {
  /** Where the server found the block: ram, disk or origin (ServedFrom). */
  servedFrom: 'x-granary-served-from',
  /** The block's full length (shorter than the block size for an object's last block). */
  blockLength: 'x-granary-block-length',
} as const;

/** The error body every non-2xx answer carries. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** What POST LOAD answers. */
export interface LoadResult {
  /** Where the block was: ram or disk (already warm), or origin (fetched now). */
  servedFrom: 'ram' | 'disk' | 'origin';
  bytes: number;
}

/** What GET INFO answers. */
export interface ServerInfo {
  /** Bytes of RAM plus disk cache: the ring weight is derived from it. */
  capacityBytes: number;
  ramBytes: number;
  diskBytes: number;
  /** The object store endpoint this server fills from (endpointIdentity form). */
  endpoint: string;
  version: string;
}

/** What POST WARMUP takes. */
export interface WarmupRequest {
  /** s3://bucket/prefix to warm (in the server's object store). */
  source: string;
}

/** Bearer prefix of the Authorization header. */
export const BEARER = 'Bearer ';

/** The Authorization header value for `token`. */
export function authorization(token: string): string {
  return `${BEARER}${token}`;
}

/**
 * Whether `header` (an Authorization value) carries `token`. Compares hashes in constant time so that
 * neither the token's length nor its prefix leaks through timing.
 */
export function tokenMatches(header: string | undefined, token: string): boolean {
  if (header === undefined || !header.startsWith(BEARER)) return false;
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(header.slice(BEARER.length)), digest(token));
}

/**
 * The canonical form of an object store endpoint, the one every block id is made with: the URL's origin
 * in lower case, no trailing slash; '' for the AWS default (no custom endpoint).
 */
export function endpointIdentity(endpoint: string | undefined): string {
  if (endpoint === undefined || endpoint.trim() === '') return '';
  try {
    return new URL(endpoint).origin.toLowerCase();
  } catch {
    return endpoint.trim().toLowerCase().replace(/\/+$/, '');
  }
}

/** A block query that failed validation; the server answers it with 400 and the message. */
export class BadBlockQuery extends Error {
  readonly code: string = 'InvalidArgument';
}

/** A block query whose block index lies past the object's end (its size says so); the server answers 416. */
export class BlockPastEnd extends BadBlockQuery {
  override readonly code = 'BlockPastEnd';
}

/** The query string naming `ref` (and, for GET BLOCK, the range inside it). */
export function blockQuery(ref: BlockRef, range?: ByteRange): string {
  const params = new URLSearchParams({
    endpoint: ref.endpoint,
    bucket: ref.bucket,
    key: ref.key,
    etag: ref.etag,
    size: String(ref.objectSize),
    index: String(ref.index),
    blockSize: String(ref.blockSize),
  });
  if (range) {
    params.set('start', String(range.start));
    params.set('end', String(range.end));
  }
  return params.toString();
}

function integerParam(params: URLSearchParams, name: string, min: number, max: number): number {
  const raw = params.get(name);
  if (raw === null) throw new BadBlockQuery(`the query lacks "${name}"`);
  if (!/^\d{1,16}$/.test(raw)) throw new BadBlockQuery(`"${name}" must be a whole number, got ${JSON.stringify(raw.slice(0, 40))}`);
  const value = Number(raw);
  if (value < min || value > max) throw new BadBlockQuery(`"${name}" must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** Control characters (C0 and DEL): no bucket, ETag or endpoint holds one. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/** NUL: no object store accepts it in a key (S3 allows the other control characters there, and a mount can write them). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NUL = /\u0000/;

function stringParam(params: URLSearchParams, name: string, options: { maxLength: number; allowEmpty?: boolean; forbidden?: RegExp }): string {
  const value = params.get(name);
  if (value === null) throw new BadBlockQuery(`the query lacks "${name}"`);
  if (value === '' && !options.allowEmpty) throw new BadBlockQuery(`"${name}" is empty`);
  if (Buffer.byteLength(value) > options.maxLength) throw new BadBlockQuery(`"${name}" is longer than ${options.maxLength} bytes`);
  const forbidden = (options.forbidden ?? CONTROL_CHARACTER).exec(value);
  if (forbidden) {
    const code = forbidden[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    throw new BadBlockQuery(`"${name}" holds the control character U+${code} at position ${forbidden.index}: no object store names anything with it`);
  }
  return value;
}

/** Parses and validates a block query (GET BLOCK without `withRange` fails if start/end are missing or outside the block). */
export function parseBlockQuery(params: URLSearchParams, withRange: true): { ref: BlockRef; range: ByteRange };
export function parseBlockQuery(params: URLSearchParams, withRange: false): { ref: BlockRef };
export function parseBlockQuery(params: URLSearchParams, withRange: boolean): { ref: BlockRef; range?: ByteRange } {
  const blockSize = integerParam(params, 'blockSize', MIN_BLOCK_SIZE, MAX_BLOCK_SIZE);
  const objectSize = integerParam(params, 'size', 1, Number.MAX_SAFE_INTEGER);
  const bucket = stringParam(params, 'bucket', { maxLength: 63 });
  const bucketProblem = bucketNameProblem(bucket);
  if (bucketProblem) throw new BadBlockQuery(`"bucket" is not a bucket name: ${bucketProblem}`);
  const lastIndex = blockCount(objectSize, blockSize) - 1;
  const index = integerParam(params, 'index', 0, Number.MAX_SAFE_INTEGER);
  if (index > lastIndex) throw new BlockPastEnd(`"index" must be between 0 and ${lastIndex}, got ${index}: block ${index} lies past the end of a ${objectSize}-byte object`);
  const ref: BlockRef = {
    endpoint: stringParam(params, 'endpoint', { maxLength: 2048, allowEmpty: true }),
    bucket,
    key: stringParam(params, 'key', { maxLength: 1024, forbidden: NUL }),
    etag: stringParam(params, 'etag', { maxLength: 1024 }),
    objectSize,
    index,
    blockSize,
  };
  if (!withRange) return { ref };
  const block = blockRange(ref);
  const start = integerParam(params, 'start', block.start, block.end - 1);
  const end = integerParam(params, 'end', start + 1, block.end);
  return { ref, range: { start, end } };
}
