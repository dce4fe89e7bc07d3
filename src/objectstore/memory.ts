import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectStoreError, type ObjectStoreErrorCode } from './errors';
import { collectPage, compareKeys } from './listing';
import type {
  ByteRange, GetOptions, GetResult, ListOptions, ListPage, MultipartUpload, ObjectInfo, ObjectStore, PutOptions, RangeRead,
} from './store';
import { checkInto, checkKey, checkPartNumber, checkPartSizes, clipRange, normalizeMetadata, rangeWithin } from './validate';

/** The calls of a MemoryStore (and of its uploads) that failNext() can make fail. */
export type MemoryOperation =
  | 'checkBucket' | 'head' | 'list' | 'get' | 'put' | 'createMultipartUpload'
  | 'uploadPart' | 'complete' | 'abort' | 'copy' | 'delete' | 'deleteMany';

interface StoredObject {
  data: Buffer;
  etag: string;
  lastModified: Date;
  metadata: Record<string, string>;
}

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

/**
 * A test fake: an ObjectStore held in memory, for fast unit tests of other modules. It keeps the contract of S3
 * (key order, delimiter roll-up, pagination, clipped ranges, If-Match, part-size rules, MD5 ETags) and can be told
 * to fail the next call of an operation with failNext(). Not for production use.
 */
export class MemoryStore implements ObjectStore {
  readonly location: string;
  private readonly objects = new Map<string, StoredObject>();
  private readonly pending = new Map<string, string>();
  private readonly failures = new Map<MemoryOperation, Error[]>();

  constructor(bucket = 'memory') {
    this.location = `memory://${bucket}`;
  }

  /** Makes the next call of `operation` throw `error` (an ObjectStoreError of that code when given a code); calls queue up. */
  failNext(operation: MemoryOperation, error: Error | ObjectStoreErrorCode): void {
    const failure = typeof error === 'string' ? new ObjectStoreError(error, `injected ${error} on ${operation} in ${this.location}`) : error;
    this.failures.set(operation, [...(this.failures.get(operation) ?? []), failure]);
  }

  /** Keys of multipart uploads started and neither completed nor aborted, to check that code cleans up. */
  pendingUploads(): string[] {
    return [...this.pending.values()];
  }

  /** All keys, in order, to inspect the store's content in tests. */
  keys(): string[] {
    return [...this.objects.keys()].sort(compareKeys);
  }

  async checkBucket(signal?: AbortSignal): Promise<void> {
    this.enter('checkBucket', signal);
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo> {
    this.enter('head', signal, key);
    const stored = this.find(key, 'head');
    return { ...this.infoOf(key, stored), metadata: { ...stored.metadata } };
  }

  async list(options: ListOptions, signal?: AbortSignal): Promise<ListPage> {
    this.enter('list', signal);
    const page = await collectPage(this.keys().map((key) => ({ key })), options);
    return {
      objects: page.objects.map(({ key }) => this.infoOf(key, this.find(key, 'list'))),
      commonPrefixes: page.commonPrefixes,
      ...(page.nextToken !== undefined && { nextToken: page.nextToken }),
    };
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    this.enter('get', options.signal, key);
    const stored = this.find(key, 'get');
    if (options.ifMatch !== undefined && options.ifMatch !== stored.etag) {
      throw new ObjectStoreError('PreconditionFailed', `get of "${key}" in ${this.location}: it changed (ETag ${stored.etag}, expected ${options.ifMatch}); read it again`);
    }
    const range = clipRange(options.range, stored.data.length, key);
    const bytes = Buffer.from(stored.data.subarray(range.start, range.end));
    return { body: Readable.from(bytes.length > 0 ? [bytes] : []), size: stored.data.length, etag: stored.etag, range };
  }

  /** get() of the range, copied into the buffer: failNext('get') and a subclass's get() (counting or holding reads) apply to it too. */
  async getInto(key: string, into: Buffer, options: GetOptions & { range: ByteRange }): Promise<RangeRead> {
    checkInto(options.range, into, key);
    const result = await this.get(key, options);
    const range = rangeWithin(options.range, result.size, key);
    let filled = 0;
    for await (const chunk of result.body as AsyncIterable<Buffer>) filled += chunk.copy(into, filled);
    return { size: result.size, etag: result.etag, range, attempts: 1 };
  }

  async put(key: string, body: Buffer | Readable, options: PutOptions = {}): Promise<ObjectInfo> {
    this.enter('put', options.signal, key);
    const data = Buffer.isBuffer(body) ? Buffer.from(body) : await readAll(body);
    return this.store(key, data, md5(data), options.metadata);
  }

  async createMultipartUpload(key: string, options: PutOptions = {}): Promise<MultipartUpload> {
    this.enter('createMultipartUpload', options.signal, key);
    const id = randomBytes(8).toString('hex');
    this.pending.set(id, key);
    const parts = new Map<number, Buffer>();
    let state: 'open' | 'completed' | 'aborted' = 'open';
    const checkOpen = () => {
      // Aborted by id (abortMultipartUpload), as another process would.
      if (state === 'open' && !this.pending.has(id)) state = 'aborted';
      if (state !== 'open') throw new ObjectStoreError('NotFound', `the multipart upload to "${key}" was already ${state}: start a new one`);
    };
    return {
      key,
      uploadId: id,
      uploadPart: async (partNumber, body, signal) => {
        this.enter('uploadPart', signal, key);
        checkPartNumber(partNumber, key);
        checkOpen();
        parts.set(partNumber, Buffer.from(body));
      },
      complete: async () => {
        this.enter('complete', undefined, key);
        checkOpen();
        const ordered = [...parts.entries()].sort(([a], [b]) => a - b).map(([partNumber, data]) => ({ partNumber, data, size: data.length }));
        checkPartSizes(ordered, key);
        // S3's multipart ETag: MD5 of the parts' binary MD5s, then "-<number of parts>".
        const digests = Buffer.concat(ordered.map((p) => createHash('md5').update(p.data).digest()));
        const info = this.store(key, Buffer.concat(ordered.map((p) => p.data)), `${md5(digests)}-${ordered.length}`, options.metadata);
        state = 'completed';
        this.pending.delete(id);
        return info;
      },
      abort: async () => {
        this.enter('abort', undefined, key);
        if (state === 'completed') return;
        state = 'aborted';
        this.pending.delete(id);
      },
    };
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    this.enter('abort', undefined, key);
    if (this.pending.get(uploadId) === key) this.pending.delete(uploadId);
  }

  async copy(sourceKey: string, destinationKey: string, signal?: AbortSignal): Promise<ObjectInfo> {
    this.enter('copy', signal, destinationKey);
    checkKey(destinationKey, this.location);
    const source = this.find(sourceKey, 'copy');
    return this.store(destinationKey, source.data, source.etag, source.metadata);
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    this.enter('delete', signal, key);
    this.objects.delete(key);
  }

  async deleteMany(keys: string[], signal?: AbortSignal): Promise<string[]> {
    this.enter('deleteMany', signal);
    for (const key of keys) this.objects.delete(key);
    return [];
  }

  /** Nothing to release. */
  close(): void {}

  /** Common entry of every call: abort, injected failure, key check. */
  private enter(operation: MemoryOperation, signal: AbortSignal | undefined, key?: string): void {
    signal?.throwIfAborted();
    const queued = this.failures.get(operation);
    const failure = queued?.shift();
    if (queued?.length === 0) this.failures.delete(operation);
    if (failure) throw failure;
    if (key !== undefined) checkKey(key, this.location);
  }

  private find(key: string, operation: string): StoredObject {
    const stored = this.objects.get(key);
    if (!stored) throw new ObjectStoreError('NotFound', `${operation} of "${key}" in ${this.location} failed: no such object`);
    return stored;
  }

  private store(key: string, data: Buffer, etag: string, metadata: Record<string, string> | undefined): ObjectInfo {
    const stored: StoredObject = { data, etag, lastModified: new Date(), metadata: normalizeMetadata(metadata) };
    this.objects.set(key, stored);
    return this.infoOf(key, stored);
  }

  private infoOf(key: string, stored: StoredObject): ObjectInfo {
    return { key, size: stored.data.length, etag: stored.etag, lastModified: stored.lastModified };
  }
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}
