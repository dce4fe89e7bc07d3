import type { Readable } from 'node:stream';

/** What the store knows of one object. */
export interface ObjectInfo {
  /** Key relative to the bucket root. */
  key: string;
  size: number;
  /** Entity tag as the store returns it, without surrounding quotes; changes whenever the content changes. */
  etag: string;
  lastModified: Date;
  /** User metadata (x-amz-meta-*), lower-case names without the prefix; only filled by head(). */
  metadata?: Record<string, string>;
}

/** One page of a listing. */
export interface ListPage {
  objects: ObjectInfo[];
  /** With a delimiter: the "directories" directly under the prefix, each ending with the delimiter. */
  commonPrefixes: string[];
  /** Pass back as `continuationToken` to get the next page; absent on the last page. */
  nextToken?: string;
}

/** Arguments of list(). */
export interface ListOptions {
  prefix: string;
  delimiter?: string;
  continuationToken?: string;
  /** Only keys after this one (S3's start-after): where a listing split into ranges starts. A continuation token overrides it. */
  startAfter?: string;
  /** Upper bound on objects + common prefixes in this page (the store may return fewer); default 1000. */
  maxKeys?: number;
}

/** A byte range [start, end) of an object; `end` is exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Arguments of get(). */
export interface GetOptions {
  range?: ByteRange;
  /** Fail with PreconditionFailed when the object's ETag is no longer this one. */
  ifMatch?: string;
  signal?: AbortSignal;
}

/** The result of get(): the bytes as a stream and what the store said of the object. */
export interface GetResult {
  body: Readable;
  /** Size of the whole object (not of the range). */
  size: number;
  etag: string;
  /** The range actually returned. */
  range: ByteRange;
}

/** What getInto() read: what the store said of the object, and how many requests the read took. */
export interface RangeRead {
  /** Size of the whole object (not of the range). */
  size: number;
  etag: string;
  /** The range read: the one asked for. */
  range: ByteRange;
  /** Requests the store sent for this read, the first included: its retries are the rest (1 for a store that never retries). */
  attempts: number;
}

/** Arguments of put() and createMultipartUpload(). */
export interface PutOptions {
  metadata?: Record<string, string>;
  contentType?: string;
  signal?: AbortSignal;
}

/** An upload in parts; the object appears only when complete() returns. */
export interface MultipartUpload {
  readonly key: string;
  /**
   * The store's id of the upload, when it has one that outlives this process (S3's UploadId): recorded so that a later
   * process can abort the upload with ObjectStore.abortMultipartUpload if this one dies first.
   */
  readonly uploadId?: string;
  /** Uploads part `partNumber` (1-based). Every part but the last must be at least MIN_PART_SIZE bytes. */
  uploadPart(partNumber: number, body: Buffer, signal?: AbortSignal): Promise<void>;
  /** Assembles the parts uploaded so far, in part-number order, into the object. */
  complete(): Promise<ObjectInfo>;
  /** Discards the upload and its parts; safe to call more than once and after a failure. */
  abort(): Promise<void>;
}

/** The smallest part S3 accepts, except for the last one. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;

/** The most parts S3 accepts in one upload. */
export const MAX_PARTS = 10_000;

/**
 * One bucket of an object store: the only way granary touches stored data. Failures are ObjectStoreErrors, except
 * that a call whose signal aborts rejects with the signal's reason (an AbortError).
 */
export interface ObjectStore {
  /** Where this store points, for logs and errors (never contains credentials). */
  readonly location: string;
  /** Checks that the bucket exists and the credentials may use it. */
  checkBucket(signal?: AbortSignal): Promise<void>;
  /** Describes one object, with its user metadata; throws NotFound when there is none. */
  head(key: string, signal?: AbortSignal): Promise<ObjectInfo>;
  /** Lists one page of keys under a prefix, in lexicographic order. */
  list(options: ListOptions, signal?: AbortSignal): Promise<ListPage>;
  /** Reads an object or a range of it as a stream. */
  get(key: string, options?: GetOptions): Promise<GetResult>;
  /**
   * Reads exactly `options.range` into `into` (which must be the range's length): the one store call a block fill
   * makes. The store retries it as it retries its other calls, the body included: a failure while the bytes stream
   * in is tried again inside this call, so a caller never needs to retry a transient failure itself. A range that
   * reaches past the object's end fails rather than filling part of `into`. `into` belongs to the store until the
   * call settles.
   */
  getInto(key: string, into: Buffer, options: GetOptions & { range: ByteRange }): Promise<RangeRead>;
  /** Writes a whole object in one request. */
  put(key: string, body: Buffer | Readable, options?: PutOptions): Promise<ObjectInfo>;
  /** Starts an upload in parts. */
  createMultipartUpload(key: string, options?: PutOptions): Promise<MultipartUpload>;
  /**
   * Aborts the upload `uploadId` of `key`, one this process may not have started (MultipartUpload.uploadId); an upload
   * that is already gone (completed or aborted) is not an error. Optional: stores whose uploads die with the process lack it.
   */
  abortMultipartUpload?(key: string, uploadId: string): Promise<void>;
  /** Copies an object inside the bucket without moving its bytes through this process. */
  copy(sourceKey: string, destinationKey: string, signal?: AbortSignal): Promise<ObjectInfo>;
  /** Deletes an object; deleting what does not exist is not an error. */
  delete(key: string, signal?: AbortSignal): Promise<void>;
  /** Deletes many objects (batched as the store allows); returns the keys that could not be deleted. */
  deleteMany(keys: string[], signal?: AbortSignal): Promise<string[]>;
  /** Releases connections and timers. */
  close(): void;
}
