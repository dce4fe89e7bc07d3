// Test helpers for the write path: a MemoryStore that records and slows calls, and staging directories.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { MemoryStore } from '../../objectstore/memory';
import type { ByteRange, GetOptions, GetResult, ListOptions, ListPage, MultipartUpload, ObjectInfo, ObjectStore, PutOptions, RangeRead } from '../../objectstore/store';

/** One recorded store call. */
export interface StoreCall {
  op: 'put' | 'createMultipartUpload' | 'uploadPart' | 'complete' | 'abort' | 'get';
  key: string;
  partNumber?: number;
  bytes?: number;
  range?: { start: number; end: number };
}

/** A MemoryStore wrapper that records writes and ranged reads, delays part uploads, and tracks their overlap. */
export class ObservedStore implements ObjectStore {
  readonly location: string;
  readonly calls: StoreCall[] = [];
  /** Parts uploading right now, and the most ever at once. */
  partsInFlight = 0;
  maxPartsInFlight = 0;
  /** While set, every part upload waits for it before it goes to the store (holdParts()). */
  private partGate: Promise<void> | undefined;

  constructor(
    readonly inner: MemoryStore = new MemoryStore(),
    /** Delay of each uploadPart (ms), to make parallelism observable. */
    public partDelayMs = 0,
  ) {
    this.location = inner.location;
  }

  /** Makes part uploads wait until the returned function is called: parts stay in flight as long as a test wants. */
  holdParts(): () => void {
    let open!: () => void;
    this.partGate = new Promise((resolve) => (open = resolve));
    return () => {
      this.partGate = undefined;
      open();
    };
  }

  /** Calls of one kind. */
  callsOf(op: StoreCall['op']): StoreCall[] {
    return this.calls.filter((call) => call.op === op);
  }

  /** The whole content of an object. */
  async content(key: string): Promise<Buffer> {
    const result = await this.inner.get(key);
    const chunks: Buffer[] = [];
    for await (const chunk of result.body as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  checkBucket(signal?: AbortSignal): Promise<void> {
    return this.inner.checkBucket(signal);
  }

  head(key: string, signal?: AbortSignal): Promise<ObjectInfo> {
    return this.inner.head(key, signal);
  }

  list(options: ListOptions, signal?: AbortSignal): Promise<ListPage> {
    return this.inner.list(options, signal);
  }

  get(key: string, options?: GetOptions): Promise<GetResult> {
    this.calls.push({ op: 'get', key, ...(options?.range && { range: options.range }) });
    return this.inner.get(key, options);
  }

  getInto(key: string, into: Buffer, options: GetOptions & { range: ByteRange }): Promise<RangeRead> {
    this.calls.push({ op: 'get', key, range: options.range });
    return this.inner.getInto(key, into, options);
  }

  put(key: string, body: Buffer | Readable, options?: PutOptions): Promise<ObjectInfo> {
    this.calls.push({ op: 'put', key, ...(Buffer.isBuffer(body) && { bytes: body.length }) });
    return this.inner.put(key, body, options);
  }

  async createMultipartUpload(key: string, options?: PutOptions): Promise<MultipartUpload> {
    this.calls.push({ op: 'createMultipartUpload', key });
    const upload = await this.inner.createMultipartUpload(key, options);
    return {
      key,
      ...(upload.uploadId !== undefined && { uploadId: upload.uploadId }),
      uploadPart: async (partNumber, body, signal) => {
        this.calls.push({ op: 'uploadPart', key, partNumber, bytes: body.length });
        this.partsInFlight++;
        this.maxPartsInFlight = Math.max(this.maxPartsInFlight, this.partsInFlight);
        try {
          if (this.partDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.partDelayMs));
          await this.partGate;
          await upload.uploadPart(partNumber, body, signal);
        } finally {
          this.partsInFlight--;
        }
      },
      complete: async () => {
        this.calls.push({ op: 'complete', key });
        return upload.complete();
      },
      abort: async () => {
        this.calls.push({ op: 'abort', key });
        return upload.abort();
      },
    };
  }

  abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    this.calls.push({ op: 'abort', key });
    return this.inner.abortMultipartUpload(key, uploadId);
  }

  copy(sourceKey: string, destinationKey: string, signal?: AbortSignal): Promise<ObjectInfo> {
    return this.inner.copy(sourceKey, destinationKey, signal);
  }

  delete(key: string, signal?: AbortSignal): Promise<void> {
    return this.inner.delete(key, signal);
  }

  deleteMany(keys: string[], signal?: AbortSignal): Promise<string[]> {
    return this.inner.deleteMany(keys, signal);
  }

  close(): void {}
}

/** A fresh temporary directory for staging files; remove it with fsp.rm(dir, { recursive: true }). */
export async function temporaryStagingDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'granary-staging-test-'));
}

/** `length` bytes of a repeating, position-dependent pattern, so misplaced bytes show up. */
export function pattern(length: number, seed = 0): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 13)) & 0xff;
  return bytes;
}
