// GetObject and HeadObject: the origin's HEAD names the version (ETag, size, date, metadata), the conditions and
// the range are judged against it as S3 judges them, and the bytes stream block by block through the ring. The
// status and headers are written only once the first block is in hand, so that a failure before any byte is an S3
// error the client can read; one after that ends the connection, which every S3 client takes for a failed read.
import type * as http from 'node:http';
import type { BlockFetcher } from '../../blocks/block-fetcher';
import { isObjectStoreError } from '../../objectstore/errors';
import type { ObjectPart } from '../../objectstore/s3';
import type { ObjectInfo } from '../../objectstore/store';
import { S3Error } from './error-reply';
import { objectBytes } from './object-stream';
import type { VersionLookup } from './version-cache';
import type { Conditions, ObjectRequest, ResponseOverrides } from './s3-request';

/** What answering a read needs of the server. */
export interface ObjectReplyContext {
  /**
   * The object's version, from the origin's HEAD or kept from a recent one (version-cache.ts); `fresh` asks the origin
   * (throws the store's NotFound, NoSuchBucket...).
   */
  head: (bucket: string, key: string, signal: AbortSignal, fresh: boolean) => Promise<VersionLookup>;
  /** The origin's HEAD of one part of the object: the object's version and where the part lies (GetObject partNumber). */
  headPart: (bucket: string, key: string, partNumber: number, signal: AbortSignal) => Promise<ObjectPart>;
  /** The ring's fetcher for the bucket's blocks. */
  fetcherOf: (bucket: string) => BlockFetcher;
  /** The range asked for, resolved against the object's size ([start, end) or undefined for all of it); throws InvalidRange. */
  rangeOf: (size: number) => { start: number; end: number } | undefined;
  blockSize: number;
  readaheadBlocks: number;
  /** Counts the bytes sent. */
  onBytes: (bytes: number) => void;
}

/** Resolves when the response can take more (drain) or never will (close), leaving no listener behind. */
function drained(response: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}

/** An ETag as the client wrote it, without quotes or a weak prefix. */
function bareTag(tag: string): string {
  return tag.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/** Whether an If-Match / If-None-Match list names the ETag ('*' names any). */
function namesTag(list: string, etag: string): boolean {
  return list.split(',').some((tag) => tag.trim() === '*' || bareTag(tag) === etag);
}

/**
 * The status the conditions decide before any byte: 412 or 304, or undefined to go on. S3's order: If-Match decides
 * over If-Unmodified-Since, If-None-Match over If-Modified-Since (a date is judged only without its tag condition).
 */
export function conditionStatus(conditions: Conditions, object: Pick<ObjectInfo, 'etag' | 'lastModified'>): 304 | 412 | undefined {
  const modifiedSeconds = Math.floor(object.lastModified.getTime() / 1000);
  const seconds = (date: Date) => Math.floor(date.getTime() / 1000);
  if (conditions.ifMatch !== undefined) {
    if (!namesTag(conditions.ifMatch, object.etag)) return 412;
  } else if (conditions.ifUnmodifiedSince && modifiedSeconds > seconds(conditions.ifUnmodifiedSince)) {
    return 412;
  }
  if (conditions.ifNoneMatch !== undefined) {
    if (namesTag(conditions.ifNoneMatch, object.etag)) return 304;
  } else if (conditions.ifModifiedSince && modifiedSeconds <= seconds(conditions.ifModifiedSince)) {
    return 304;
  }
  return undefined;
}

/** The headers S3 sends with an object: its version, size, date and user metadata, overridden where asked. */
function objectHeaders(object: ObjectInfo, overrides: ResponseOverrides | undefined, requestId: string): Record<string, string> {
  const headers: Record<string, string> = {
    etag: `"${object.etag}"`,
    'last-modified': object.lastModified.toUTCString(),
    'accept-ranges': 'bytes',
    'content-type': overrides?.contentType ?? 'application/octet-stream',
    'x-amz-request-id': requestId,
  };
  for (const [name, value] of Object.entries(object.metadata ?? {})) headers[`x-amz-meta-${name}`] = value;
  if (overrides?.contentDisposition) headers['content-disposition'] = overrides.contentDisposition;
  if (overrides?.cacheControl) headers['cache-control'] = overrides.cacheControl;
  if (overrides?.contentEncoding) headers['content-encoding'] = overrides.contentEncoding;
  if (overrides?.contentLanguage) headers['content-language'] = overrides.contentLanguage;
  if (overrides?.expires) headers.expires = overrides.expires;
  return headers;
}

/** The store's failure as S3 would answer it (`partNumber`: the part asked for, which may not exist). */
export function objectStoreFailure(error: unknown, bucket: string, key: string, partNumber?: number): S3Error {
  if (error instanceof S3Error) return error;
  const message = (error as Error).message;
  // A part past the last: the origin's 416 (a HEAD's, without a body) or InvalidPartNumber, InvalidArgument to the store.
  if (partNumber !== undefined && isObjectStoreError(error, 'InvalidArgument')) return new S3Error('InvalidPartNumber', `the object ${bucket}/${key} has no part ${partNumber}: ask for a part from 1 to its x-amz-mp-parts-count`);
  if (isObjectStoreError(error, 'NotFound')) return new S3Error('NoSuchKey', `the object ${bucket}/${key} does not exist`);
  if (isObjectStoreError(error, 'NoSuchBucket')) return new S3Error('NoSuchBucket', `the bucket ${bucket} does not exist at the origin`);
  if (isObjectStoreError(error, 'AccessDenied')) return new S3Error('AccessDenied', `the cache's own credentials may not read ${bucket}/${key} at the origin: ${message}`);
  return new S3Error('ServiceUnavailable', `reading ${bucket}/${key} through the cache failed: ${message}; retry`, { cause: error });
}

/**
 * Answers a GetObject or HeadObject; `signal` ends it (the client went away). The object changing between the HEAD
 * and the first block (the fill's If-Match fails) is taken once more from a fresh HEAD; a second change answers 503.
 * A 412 judged on a kept version is judged again on a fresh one, since the client may know a newer ETag than the
 * one kept.
 */
export async function replyObject(read: ObjectRequest, response: http.ServerResponse, requestId: string, signal: AbortSignal, context: ObjectReplyContext): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const fresh = attempt > 1;
    let object: ObjectInfo;
    let kept = false;
    // A part is asked of the origin itself, each time: where it lies is not part of the version kept.
    let part: ObjectPart | undefined;
    try {
      if (read.partNumber !== undefined) {
        part = await context.headPart(read.bucket, read.key, read.partNumber, signal);
        object = part.object;
      } else {
        const lookup = await context.head(read.bucket, read.key, signal, fresh);
        object = lookup.object;
        kept = !lookup.fromOrigin;
      }
    } catch (error) {
      throw objectStoreFailure(error, read.bucket, read.key, read.partNumber);
    }
    const decided = conditionStatus(read.conditions, object);
    if (decided === 412 && kept) continue;
    if (decided === 412) throw new S3Error('PreconditionFailed', `the object's ETag is "${object.etag}", which the request's If-Match or If-Unmodified-Since excludes`);
    const headers = objectHeaders(object, read.responseOverrides, requestId);
    if (decided === 304) {
      response.writeHead(304, { etag: headers.etag as string, 'last-modified': headers['last-modified'] as string, 'x-amz-request-id': requestId });
      response.end();
      return;
    }
    let range: { start: number; end: number } | undefined;
    if (part?.partsCount !== undefined) headers['x-amz-mp-parts-count'] = String(part.partsCount);
    try {
      range = part ? { start: part.start, end: part.end } : context.rangeOf(object.size);
    } catch (error) {
      // S3 tells the size with a 416, so that the client can ask again within it.
      if (error instanceof S3Error && error.code === 'InvalidRange') throw new S3Error('InvalidRange', error.message, { headers: { 'content-range': `bytes */${object.size}` } });
      throw error;
    }
    const { start, end } = range ?? { start: 0, end: object.size };
    const status = range ? 206 : 200;
    if (range) headers['content-range'] = `bytes ${start}-${end - 1}/${object.size}`;
    headers['content-length'] = String(end - start);
    if (read.kind === 'HeadObject' || end === start) {
      response.writeHead(status, headers);
      response.end();
      return;
    }
    const pieces = objectBytes({ fetcher: context.fetcherOf(read.bucket), version: { key: read.key, etag: object.etag, size: object.size }, start, end, blockSize: context.blockSize, readahead: context.readaheadBlocks, signal });
    let first: IteratorResult<Buffer>;
    try {
      first = await pieces.next();
    } catch (error) {
      await pieces.return(undefined);
      if (isObjectStoreError(error, 'PreconditionFailed') && attempt === 1) continue;
      throw objectStoreFailure(error, read.bucket, read.key);
    }
    response.writeHead(status, headers);
    try {
      for (let piece = first; !piece.done; piece = await pieces.next()) {
        context.onBytes(piece.value.length);
        if (!response.write(piece.value)) await drained(response);
        if (response.destroyed) return;
      }
      response.end();
    } catch (error) {
      // The status is sent: only a cut connection tells the client the body is short.
      response.destroy(error as Error);
      throw Object.assign(objectStoreFailure(error, read.bucket, read.key), { afterHeaders: true });
    } finally {
      await pieces.return(undefined);
    }
    return;
  }
}
