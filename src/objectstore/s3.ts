import * as http from 'node:http';
import * as https from 'node:https';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand,
  DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand,
  ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand, UploadPartCopyCommand,
  type GetObjectCommandOutput, type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { NODE_REGION_CONFIG_FILE_OPTIONS, NODE_REGION_CONFIG_OPTIONS, loadConfig } from '@smithy/core/config';
import { ObjectStoreError, isObjectStoreError } from './errors';
import { checkRegionEnv, DEFAULT_REGION, endpointFromEnv } from './s3-env';
import { toObjectStoreError } from './s3-errors';
import { LeanGet, parseContentRange, rangeRead, readBodyInto } from './s3-get';
import {
  MAX_PARTS, MIN_PART_SIZE,
  type ByteRange, type GetOptions, type GetResult, type ListOptions, type ListPage, type MultipartUpload,
  type ObjectInfo, type ObjectStore, type PutOptions, type RangeRead,
} from './store';
import { checkInto, checkKey, checkPartNumber, checkRange, pageSize } from './validate';
import { forEachLimited } from '../util/for-each-limited';

// Read from here by the cache server, the warm-up and tests too.
export { checkRegionEnv, DEFAULT_REGION, endpointFromEnv };

/** Default for S3StoreOptions.maxAttempts: the first try plus 4 retries. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/** Default for S3StoreOptions.requestTimeoutMs. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Default for S3StoreOptions.maxSockets. */
export const DEFAULT_MAX_SOCKETS = 64;

/** The longest a TCP connection may take to open, whatever requestTimeoutMs says. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** Largest object CopyObject copies in one request (S3's limit); above it, copy() copies in parts. */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3;

/** Default size of each part of a multipart copy (raised so that the copy fits in MAX_PARTS parts). */
export const COPY_PART_BYTES = 512 * 1024 ** 2;

/** Parts of a multipart copy in flight at once. */
export const COPY_CONCURRENCY = 8;

/** Part size of put() of a Readable: a stream longer than this goes up as a multipart upload (limit: MAX_PARTS parts). */
export const STREAM_PART_BYTES = 8 * 1024 ** 2;

/** The most keys one DeleteObjects request takes (S3's limit). */
export const MAX_DELETE_BATCH = 1000;

/** How to reach one bucket; absent fields come from the standard AWS environment and profile. */
export interface S3StoreOptions {
  bucket: string;
  /** Custom endpoint (MinIO, Ceph, R2, ...); default: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS itself. */
  endpoint?: string;
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, the AWS profile, then DEFAULT_REGION. */
  region?: string;
  /** Path-style URLs (`endpoint/bucket/key`); default: on when a custom endpoint is set, since most S3-compatible servers need it. */
  forcePathStyle?: boolean;
  /** Default: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, then the SDK's chain (profile, web identity, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Tries per request, retries included (exponential backoff with jitter on 5xx, SlowDown, throttling, network errors); default DEFAULT_MAX_ATTEMPTS. */
  maxAttempts?: number;
  /** How long a request may go without any byte moving before it fails and is retried; default DEFAULT_REQUEST_TIMEOUT_MS. */
  requestTimeoutMs?: number;
  /** Keep-alive connections per host; default DEFAULT_MAX_SOCKETS. */
  maxSockets?: number;
  /** Size above which copy() copies in parts; default MAX_SINGLE_COPY_BYTES (exposed for testing). */
  multipartCopyThresholdBytes?: number;
  /** Part size of a multipart copy; default COPY_PART_BYTES (exposed for testing). */
  copyPartBytes?: number;
  /**
   * get() through the lean path of s3-get.ts (a SigV4-signed node:http request, about a third of the SDK's CPU per
   * read, see bench/store-get.ts) rather than the SDK's GetObjectCommand; default true. Off keeps the SDK's GET, a
   * fallback for exotic setups the lean path may not reproduce exactly (a proxy or server that needs the SDK's extra
   * headers, or a bug found in the field).
   */
  fastGet?: boolean;
  /**
   * getInto() over raw connections that read each body straight into the buffer, over TCP or TLS
   * (src/net/raw-http.ts); false reads it through node:http(s), its chunks copied in. Default true; exposed for
   * testing, and for measuring what the raw path saves.
   */
  rawReads?: boolean;
  /**
   * PEM certificates an https endpoint's certificate must chain to, in place of Node's default CAs. Default: Node's,
   * which a private CA joins through NODE_EXTRA_CA_CERTS (the way for a mount); exposed for tests and the bench,
   * whose servers' certificates are made after the process started.
   */
  ca?: string | Buffer;
}

const unquote = (etag: string | undefined): string => (etag ?? '').replace(/^"|"$/g, '');

/** Cuts a stream into buffers of exactly `size` bytes (the last one shorter). */
async function* partsOf(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of stream) {
    let data: Buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    while (pendingBytes + data.length >= size) {
      const take = size - pendingBytes;
      pending.push(data.subarray(0, take));
      yield Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      data = data.subarray(take);
    }
    if (data.length > 0) {
      pending.push(data);
      pendingBytes += data.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

/** Commands whose body is object data, sent over https without its SHA-256 (see the S3Store constructor). */
const UPLOAD_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand']);

/** Where one part of a multipart object lies in it: [start, end) of `object.size`, and how many parts it has. */
export interface ObjectPart {
  object: ObjectInfo;
  start: number;
  end: number;
  /** The object's parts (absent for an object uploaded whole). */
  partsCount?: number;
}

/** An object store bucket reached with @aws-sdk/client-s3 (get() with the lean path of s3-get.ts): AWS S3 or any S3-compatible server. */
export class S3Store implements ObjectStore {
  readonly location: string;
  readonly bucket: string;
  /** The custom endpoint, when one is set (from the options or the environment). */
  readonly endpoint: string | undefined;
  private readonly client: S3Client;
  private readonly endpointHost: string | undefined;
  private readonly secrets: string[];
  private readonly multipartCopyThreshold: number;
  private readonly copyPartBytes: number;
  private readonly leanGet: LeanGet | undefined;
  private readonly agents: Array<http.Agent | https.Agent>;

  /** Builds the client; `env` supplies the AWS_* variables (endpoint, region, static credentials). */
  constructor(options: S3StoreOptions, env: NodeJS.ProcessEnv = process.env) {
    this.bucket = options.bucket;
    this.endpoint = options.endpoint || endpointFromEnv(env);
    this.endpointHost = this.endpoint ? safeHost(this.endpoint) : undefined;
    this.location = `s3://${this.bucket}${this.endpointHost ? ` at ${this.endpointHost}` : ''}`;
    this.multipartCopyThreshold = options.multipartCopyThresholdBytes ?? MAX_SINGLE_COPY_BYTES;
    this.copyPartBytes = options.copyPartBytes ?? COPY_PART_BYTES;
    const credentials = options.credentials ?? (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN && { sessionToken: env.AWS_SESSION_TOKEN }) }
      : undefined);
    this.secrets = credentials ? [credentials.accessKeyId, credentials.secretAccessKey, credentials.sessionToken ?? ''] : [];
    const timeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const maxSockets = options.maxSockets ?? DEFAULT_MAX_SOCKETS;
    if (!options.region) checkRegionEnv(env);
    const region = options.region || env.AWS_REGION || env.AWS_DEFAULT_REGION;
    const forcePathStyle = options.forcePathStyle ?? this.endpoint !== undefined;
    const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    const connectTimeout = Math.min(timeout, CONNECT_TIMEOUT_MS);
    // One pool of keep-alive connections, shared by the SDK's calls and the lean GET.
    const httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    const httpsAgent = new https.Agent({ keepAlive: true, maxSockets, ...(options.ca !== undefined && { ca: options.ca }) });
    this.agents = [httpAgent, httpsAgent];
    this.client = new S3Client({
      region: region ?? regionFromProfile,
      ...(this.endpoint && { endpoint: this.endpoint }),
      forcePathStyle,
      ...(credentials && { credentials }),
      maxAttempts,
      retryMode: 'standard',
      // Checksums only where S3 requires them: many S3-compatible servers reject the SDK's newer default headers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: new NodeHttpHandler({
        httpAgent,
        httpsAgent,
        connectionTimeout: connectTimeout,
        // An idle timeout rather than a total one, so a large part on a slow link is not cut off while it progresses.
        socketTimeout: timeout,
      }),
    });
    // Uploads over https go with `x-amz-content-sha256: UNSIGNED-PAYLOAD` instead of the body's SHA-256, which the SDK
    // otherwise computes for every Buffer body: 0.75 s of CPU per GiB written, on the mount's one thread. Over TLS the
    // signed hash adds nothing TLS does not give already (the bytes' integrity on the wire); over plain http it is the
    // only check of the bytes besides TCP's, so it stays.
    this.client.middlewareStack.add((next, context) => async (args) => {
      const request = args.request as { protocol?: string; headers?: Record<string, string> };
      if (UPLOAD_COMMANDS.has(context.commandName ?? '') && request.protocol === 'https:' && request.headers) {
        request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      }
      return next(args);
    }, { step: 'build', name: 'granaryUnsignedUploadsOverTls' });
    this.leanGet = options.fastGet === false ? undefined : new LeanGet({
      client: this.client,
      bucket: this.bucket,
      endpoint: this.endpoint,
      forcePathStyle,
      httpAgent,
      httpsAgent,
      maxSockets,
      maxAttempts,
      requestTimeoutMs: timeout,
      connectTimeoutMs: connectTimeout,
      rawReads: options.rawReads ?? true,
      toError: (error, key, operation) => this.toError(error, operation, key),
    });
  }

  /**
   * HeadBucket; its answers have no body, so a 404 is confirmed with a one-key listing whose error says more
   * (some servers, versitygw among them, answer 404 rather than 403 to an unknown access key).
   */
  async checkBucket(signal?: AbortSignal): Promise<void> {
    try {
      await this.call('checkBucket', undefined, signal, () => this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: signal }));
    } catch (error) {
      if (!isObjectStoreError(error, 'NoSuchBucket')) throw error;
      await this.call('checkBucket', undefined, signal, () => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, MaxKeys: 1 }), { abortSignal: signal }));
      throw error;
    }
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo> {
    const output = await this.headObject('head', key, signal);
    return this.infoOf(key, output);
  }

  /**
   * The object and where its part `partNumber` lies in it (S3's HEAD with partNumber: the part's Content-Range and
   * the object's parts count; an object uploaded whole is its own part 1). Throws when the store does not say where
   * the part lies.
   */
  async headPart(key: string, partNumber: number, signal?: AbortSignal): Promise<ObjectPart> {
    const output = await this.headObject('head', key, signal, partNumber);
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(output.ContentRange ?? '');
    if (range) {
      const [start, last, size] = [Number(range[1]), Number(range[2]), Number(range[3])];
      return { object: { ...this.infoOf(key, output), size }, start, end: last + 1, ...(output.PartsCount !== undefined && { partsCount: output.PartsCount }) };
    }
    if (partNumber === 1 && (output.PartsCount ?? 1) === 1) {
      const object = this.infoOf(key, output);
      return { object, start: 0, end: object.size };
    }
    throw new Error(`${this.location}: the HEAD of part ${partNumber} of ${key} did not say where the part lies (no Content-Range)`);
  }

  async list(options: ListOptions, signal?: AbortSignal): Promise<ListPage> {
    const maxKeys = pageSize(options);
    const lean = await this.leanGet?.list({ ...options, maxKeys }, signal);
    if (lean) return lean;
    const output = await this.call('list', options.prefix, signal, () => this.client.send(new ListObjectsV2Command({
      Bucket: this.bucket,
      Prefix: options.prefix,
      ...(options.delimiter && { Delimiter: options.delimiter }),
      ...(options.continuationToken ? { ContinuationToken: options.continuationToken } : options.startAfter && { StartAfter: options.startAfter }),
      MaxKeys: maxKeys,
    }), { abortSignal: signal }));
    return {
      objects: (output.Contents ?? []).map((item) => ({
        key: item.Key ?? '',
        size: item.Size ?? 0,
        etag: unquote(item.ETag),
        lastModified: item.LastModified ?? new Date(0),
      })),
      commonPrefixes: (output.CommonPrefixes ?? []).map((p) => p.Prefix ?? ''),
      ...(output.IsTruncated && output.NextContinuationToken && { nextToken: output.NextContinuationToken }),
    };
  }

  /**
   * A range read into `into`, the body read inside each try: by the lean path (raw connections, over TLS for an https
   * endpoint), else by the SDK, whose retry strategy then retries a body that breaks off too.
   */
  async getInto(key: string, into: Buffer, options: GetOptions & { range: ByteRange }): Promise<RangeRead> {
    checkKey(key, this.location);
    checkInto(options.range, into, key);
    options.signal?.throwIfAborted();
    const lean = await this.leanGet?.getInto(key, into, options);
    if (lean) return lean;
    const { range, ifMatch, signal } = options;
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Range: `bytes=${range.start}-${range.end - 1}`,
      ...(ifMatch !== undefined && { IfMatch: `"${ifMatch}"` }),
    });
    // In the deserialize step, inside the SDK's retry middleware (finalizeRequest): each try reads its own body.
    let read: Omit<RangeRead, 'attempts'> | undefined;
    command.middlewareStack.add((next) => async (args) => {
      const result = await next(args);
      const output = result.output as GetObjectCommandOutput;
      if (!(output.Body instanceof Readable)) throw new ObjectStoreError('Internal', `get of "${key}" in ${this.location} returned no readable body; report this with the server's name`);
      read = rangeRead(output.ContentRange, output.ETag, into.length, range);
      await readBodyInto(output.Body, output.ContentLength, into, signal);
      return result;
    }, { step: 'deserialize', priority: 'high', name: 'granaryReadBodyInto' });
    const output = await this.call('get', key, signal, () => this.client.send(command, { abortSignal: signal }));
    if (!read) throw new ObjectStoreError('Internal', `get of "${key}" in ${this.location} answered without reading the body; report this`);
    return { ...read, attempts: output.$metadata.attempts ?? 1 };
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    checkKey(key, this.location);
    if (options.range) checkRange(options.range, key);
    const { range, ifMatch, signal } = options;
    signal?.throwIfAborted();
    const lean = await this.leanGet?.get(key, options);
    if (lean) return lean;
    const output = await this.call('get', key, signal, () => this.client.send(new GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ...(range && { Range: `bytes=${range.start}-${range.end - 1}` }),
      ...(ifMatch !== undefined && { IfMatch: `"${ifMatch}"` }),
    }), { abortSignal: signal }));
    const body = output.Body;
    if (!(body instanceof Readable)) {
      throw new ObjectStoreError('Internal', `get of "${key}" in ${this.location} returned no readable body; report this with the server's name`);
    }
    const contentRange = parseContentRange(output.ContentRange);
    const size = contentRange?.size ?? output.ContentLength ?? 0;
    return { body, size, etag: unquote(output.ETag), range: contentRange?.range ?? { start: 0, end: size } };
  }

  /**
   * Writes an object. A Buffer goes up in one PutObject. A Readable of unknown length is read STREAM_PART_BYTES at
   * a time: if it ends within the first part it is one PutObject, else a multipart upload (aborted on any failure),
   * so that memory stays bounded and no length is needed up front.
   */
  async put(key: string, body: Buffer | Readable, options: PutOptions = {}): Promise<ObjectInfo> {
    checkKey(key, this.location);
    if (Buffer.isBuffer(body)) return this.putBuffer(key, body, options);
    const parts = partsOf(body, STREAM_PART_BYTES);
    let first: IteratorResult<Buffer>;
    try {
      first = await parts.next();
    } catch (error) {
      throw this.streamFailure(error, key);
    }
    if (first.done) return this.putBuffer(key, Buffer.alloc(0), options);
    if (first.value.length < STREAM_PART_BYTES) return this.putBuffer(key, first.value, options);
    const upload = await this.createMultipartUpload(key, options);
    try {
      let partNumber = 1;
      await upload.uploadPart(partNumber, first.value, options.signal);
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await parts.next();
        } catch (error) {
          throw this.streamFailure(error, key);
        }
        if (next.done) break;
        partNumber += 1;
        if (partNumber > MAX_PARTS) {
          throw new ObjectStoreError('InvalidArgument', `put of "${key}" in ${this.location}: the stream is longer than ${MAX_PARTS} parts of ${STREAM_PART_BYTES} bytes; upload it with createMultipartUpload and larger parts`);
        }
        await upload.uploadPart(partNumber, next.value, options.signal);
      }
      return await upload.complete();
    } catch (error) {
      await upload.abort().catch(() => undefined);
      body.destroy();
      throw error;
    }
  }

  async createMultipartUpload(key: string, options: PutOptions = {}): Promise<MultipartUpload> {
    checkKey(key, this.location);
    const output = await this.call('start of a multipart upload', key, options.signal, () => this.client.send(new CreateMultipartUploadCommand({
      Bucket: this.bucket,
      Key: key,
      ...(options.metadata && { Metadata: options.metadata }),
      ...(options.contentType && { ContentType: options.contentType }),
    }), { abortSignal: options.signal }));
    if (!output.UploadId) throw new ObjectStoreError('Internal', `start of a multipart upload to "${key}" in ${this.location} returned no upload id`);
    return new S3MultipartUpload(this, key, output.UploadId);
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    checkKey(key, this.location);
    try {
      await this.call('abort of the multipart upload to', key, undefined, () => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })));
    } catch (error) {
      if (!isObjectStoreError(error, 'NotFound')) throw error;
    }
  }

  /** Copies with CopyObject up to the threshold (5 GiB), else with UploadPartCopy parts; the user metadata is kept. */
  async copy(sourceKey: string, destinationKey: string, signal?: AbortSignal): Promise<ObjectInfo> {
    checkKey(destinationKey, this.location);
    const source = await this.headObject('copy', sourceKey, signal);
    const size = source.ContentLength ?? 0;
    if (size > this.multipartCopyThreshold) return this.copyInParts(sourceKey, source, destinationKey, signal);
    const output = await this.call(`copy of "${sourceKey}" to`, destinationKey, signal, () => this.client.send(new CopyObjectCommand({
      Bucket: this.bucket,
      Key: destinationKey,
      CopySource: this.copySource(sourceKey),
      MetadataDirective: 'COPY',
    }), { abortSignal: signal }));
    return {
      key: destinationKey,
      size,
      etag: unquote(output.CopyObjectResult?.ETag),
      lastModified: output.CopyObjectResult?.LastModified ?? new Date(),
    };
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    checkKey(key, this.location);
    try {
      await this.call('delete', key, signal, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal }));
    } catch (error) {
      if (!isObjectStoreError(error, 'NotFound')) throw error;
    }
  }

  /** Deletes in DeleteObjects batches of MAX_DELETE_BATCH; a batch that fails as a whole throws (deletes are safe to retry). */
  async deleteMany(keys: string[], signal?: AbortSignal): Promise<string[]> {
    const failed: string[] = [];
    for (let start = 0; start < keys.length; start += MAX_DELETE_BATCH) {
      const batch = keys.slice(start, start + MAX_DELETE_BATCH);
      const output = await this.call(`delete of ${batch.length} keys starting with`, batch[0], signal, () => this.client.send(new DeleteObjectsCommand({
        Bucket: this.bucket,
        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      }), { abortSignal: signal }));
      for (const error of output.Errors ?? []) {
        if (error.Key !== undefined && error.Code !== 'NoSuchKey') failed.push(error.Key);
      }
    }
    return failed;
  }

  /** Closes every connection: the lean GET's, the agents' (the SDK destroys them only once it has sent a request itself), the SDK's. */
  close(): void {
    this.leanGet?.close();
    for (const agent of this.agents) agent.destroy();
    this.client.destroy();
  }

  /**
   * Runs one SDK call and maps its failure; an aborted call rejects with the signal's reason instead.
   * Exposed to the upload class of this module.
   */
  async call<T>(operation: string, key: string | undefined, signal: AbortSignal | undefined, send: () => Promise<T>): Promise<T> {
    signal?.throwIfAborted();
    try {
      return await send();
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? error;
      throw this.toError(error, operation, key);
    }
  }

  /** Maps a failure of `operation` to an ObjectStoreError that names the key and bucket, without credentials. */
  private toError(error: unknown, operation: string, key: string | undefined): ObjectStoreError {
    return toObjectStoreError(error, {
      operation,
      bucket: this.bucket,
      ...(key !== undefined && { key }),
      ...(this.endpointHost && { endpointHost: this.endpointHost }),
      secrets: this.secrets,
    });
  }

  /** The SDK client, for the upload class of this module. */
  get sdk(): S3Client {
    return this.client;
  }

  /** The CopySource header for a key of this bucket (URL-encoded, slashes kept). */
  copySource(key: string): string {
    return `${this.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  private async headObject(operation: string, key: string, signal: AbortSignal | undefined, partNumber?: number): Promise<HeadObjectCommandOutput> {
    checkKey(key, this.location);
    return this.call(operation, key, signal, () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ...(partNumber !== undefined && { PartNumber: partNumber }) }), { abortSignal: signal }));
  }

  private infoOf(key: string, output: HeadObjectCommandOutput): ObjectInfo {
    return {
      key,
      size: output.ContentLength ?? 0,
      etag: unquote(output.ETag),
      lastModified: output.LastModified ?? new Date(0),
      metadata: output.Metadata ?? {},
    };
  }

  private async putBuffer(key: string, body: Buffer, options: PutOptions): Promise<ObjectInfo> {
    const output = await this.call('put', key, options.signal, () => this.client.send(new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: body,
      ContentLength: body.length,
      ...(options.metadata && { Metadata: options.metadata }),
      ...(options.contentType && { ContentType: options.contentType }),
    }), { abortSignal: options.signal }));
    // PutObject does not return Last-Modified; the local clock at completion is close enough (the cache keys on ETag).
    return { key, size: body.length, etag: unquote(output.ETag), lastModified: new Date() };
  }

  private streamFailure(error: unknown, key: string): unknown {
    if (isObjectStoreError(error) || (error instanceof Error && error.name === 'AbortError')) return error;
    return new ObjectStoreError('Internal', `put of "${key}" in ${this.location} failed: reading the source stream failed (${error instanceof Error ? error.message : String(error)}); nothing was written`, { cause: error });
  }

  /** Steps: 1. start an upload with the source's metadata and type, 2. copy ranges in parallel, 3. complete; abort on any failure. */
  private async copyInParts(sourceKey: string, source: HeadObjectCommandOutput, destinationKey: string, signal?: AbortSignal): Promise<ObjectInfo> {
    const size = source.ContentLength ?? 0;
    const upload = (await this.createMultipartUpload(destinationKey, {
      metadata: source.Metadata ?? {},
      ...(source.ContentType && { contentType: source.ContentType }),
      ...(signal && { signal }),
    })) as S3MultipartUpload;
    try {
      const partBytes = Math.max(this.copyPartBytes, MIN_PART_SIZE, Math.ceil(size / MAX_PARTS));
      const tasks: Array<() => Promise<void>> = [];
      for (let start = 0, partNumber = 1; start < size; start += partBytes, partNumber += 1) {
        const range = { start, end: Math.min(start + partBytes, size) };
        const number = partNumber;
        tasks.push(() => upload.copyPart(number, sourceKey, range, unquote(source.ETag), signal));
      }
      await forEachLimited(tasks, COPY_CONCURRENCY, (task) => task());
      return await upload.complete();
    } catch (error) {
      await upload.abort().catch(() => undefined);
      throw error;
    }
  }
}

/** The host[:port] of an endpoint URL, without any user info. */
function safeHost(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return '(invalid endpoint URL)';
  }
}

/** The region from the AWS profile (the SDK's own loader), else DEFAULT_REGION instead of the SDK's "Region is missing". */
async function regionFromProfile(): Promise<string> {
  try {
    return await loadConfig(NODE_REGION_CONFIG_OPTIONS, NODE_REGION_CONFIG_FILE_OPTIONS)();
  } catch {
    return DEFAULT_REGION;
  }
}

/** One S3 multipart upload: parts are remembered by number so complete() can send them in order. */
class S3MultipartUpload implements MultipartUpload {
  private readonly parts = new Map<number, { etag: string; size: number }>();
  private state: 'open' | 'completed' | 'aborted' = 'open';
  private aborting: Promise<void> | undefined;

  constructor(
    private readonly store: S3Store,
    readonly key: string,
    readonly uploadId: string,
  ) {}

  async uploadPart(partNumber: number, body: Buffer, signal?: AbortSignal): Promise<void> {
    checkPartNumber(partNumber, this.key);
    this.checkOpen();
    const output = await this.store.call(`upload of part ${partNumber} to`, this.key, signal, () => this.store.sdk.send(new UploadPartCommand({
      Bucket: this.store.bucket,
      Key: this.key,
      UploadId: this.uploadId,
      PartNumber: partNumber,
      Body: body,
      ContentLength: body.length,
    }), { abortSignal: signal }));
    this.parts.set(partNumber, { etag: output.ETag ?? '', size: body.length });
  }

  /** Copies a byte range of another key of the bucket as part `partNumber`, if that key still has ETag `ifMatch`. */
  async copyPart(partNumber: number, sourceKey: string, range: ByteRange, ifMatch: string, signal?: AbortSignal): Promise<void> {
    checkPartNumber(partNumber, this.key);
    this.checkOpen();
    const output = await this.store.call(`copy of part ${partNumber} from "${sourceKey}" to`, this.key, signal, () => this.store.sdk.send(new UploadPartCopyCommand({
      Bucket: this.store.bucket,
      Key: this.key,
      UploadId: this.uploadId,
      PartNumber: partNumber,
      CopySource: this.store.copySource(sourceKey),
      CopySourceRange: `bytes=${range.start}-${range.end - 1}`,
      CopySourceIfMatch: `"${ifMatch}"`,
    }), { abortSignal: signal }));
    this.parts.set(partNumber, { etag: output.CopyPartResult?.ETag ?? '', size: range.end - range.start });
  }

  async complete(): Promise<ObjectInfo> {
    this.checkOpen();
    const ordered = [...this.parts.entries()].sort(([a], [b]) => a - b);
    if (ordered.length === 0) {
      throw new ObjectStoreError('InvalidArgument', `the upload to "${this.key}" has no parts: upload at least one part before complete()`);
    }
    const output = await this.store.call('complete of the multipart upload to', this.key, undefined, () => this.store.sdk.send(new CompleteMultipartUploadCommand({
      Bucket: this.store.bucket,
      Key: this.key,
      UploadId: this.uploadId,
      MultipartUpload: { Parts: ordered.map(([PartNumber, part]) => ({ PartNumber, ETag: part.etag })) },
    })));
    this.state = 'completed';
    const size = ordered.reduce((sum, [, part]) => sum + part.size, 0);
    return { key: this.key, size, etag: unquote(output.ETag), lastModified: new Date() };
  }

  /** Aborts once; concurrent and later calls share the outcome, and a failed abort may be retried. */
  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.aborting ??= this.store.call('abort of the multipart upload to', this.key, undefined, () => this.store.sdk.send(new AbortMultipartUploadCommand({
      Bucket: this.store.bucket,
      Key: this.key,
      UploadId: this.uploadId,
    }))).then(
      () => { this.state = 'aborted'; },
      (error: unknown) => {
        this.aborting = undefined;
        if (isObjectStoreError(error, 'NotFound')) this.state = 'aborted';
        else throw error;
      },
    );
    return this.aborting;
  }

  private checkOpen(): void {
    if (this.state !== 'open') {
      throw new ObjectStoreError('NotFound', `the multipart upload to "${this.key}" was already ${this.state}: start a new one`);
    }
  }
}
