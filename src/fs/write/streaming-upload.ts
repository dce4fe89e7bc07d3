// A new file written sequentially from offset 0, streamed to the object store as a multipart upload while it is
// written: memory holds only the parts not yet acknowledged, and close waits for the store before succeeding.
import type { Logger } from '../../log/logger';
import { MAX_PARTS, type ObjectInfo, type ObjectStore } from '../../objectstore/store';
import { untilAborted } from '../../util/abortable';
import { Errno } from '../errno';
import { FuseError } from '../fuse/operations';
import type { TrackedUpload } from './multipart-uploads';
import { PartBuffer } from './part-buffer';
import { partSizeFor } from './part-plan';
import type { WritePath } from './write-path';

/** What a StreamingUpload writes to and with. */
export interface StreamingUploadOptions {
  store: ObjectStore;
  key: string;
  writePath: WritePath;
  logger: Logger;
  /** Called whenever the store acknowledges a part or the object: the upload progresses. */
  onAcknowledged?: () => void;
}

/**
 * The bytes [0, size) of a new object, arriving in order. Full parts upload in parallel (up to maxPartsInFlight)
 * while later writes fill the next part; a file that never fills one part is a single PUT at commit().
 *
 * Memory: each PartBuffer reserves its whole planned size from the mount's budget when its first byte arrives and
 * gives it back when its upload settles (to the mount's free list of part buffers, still reserved, for the next part:
 * see PartBufferPool). Reserving per write instead would deadlock: with every writer holding half
 * a part and waiting for the rest, no part could ever fill, upload and free memory. The price (a known limit): a
 * handle left open and idle with a partly filled part keeps its reservation, so memoryBudgetBytes / partSizeBytes
 * such handles (128 by default) make every other writer wait for one of them to close.
 *
 * A part that fails to upload is recorded and surfaces at the next write or commit, which then fail; the caller
 * aborts, so no part is left behind (the abort itself runs in the background, retried: see UploadAborter).
 */
export class StreamingUpload {
  private written = 0;
  private current: PartBuffer | undefined;
  private nextPartNumber = 1;
  /** The multipart upload, once the first full part asked for it: started once, awaited by every part's send. */
  private upload: Promise<TrackedUpload> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private state: 'open' | 'committed' | 'aborted' = 'open';

  constructor(private readonly options: StreamingUploadOptions) {}

  /** Bytes written so far: where the next sequential write must start. */
  get size(): number {
    return this.written;
  }

  /** True while every written byte is still in memory (no part has gone to the store): a switch can then spill them locally. */
  get inMemory(): boolean {
    // At most one part was ever started, and it is still the one filling.
    return this.nextPartNumber === 1 || (this.nextPartNumber === 2 && this.current !== undefined);
  }

  /** Parts currently uploading (for tests). */
  get partsInFlight(): number {
    return this.inFlight.size;
  }

  /**
   * Appends `data` at offset `size`; waits for memory (backpressure) and for a free upload slot when needed. Returns
   * the bytes taken: all of them, unless `signal` aborts one of those waits; then the bytes taken before it (a short
   * write), or, when none were, it rejects with the signal's reason and nothing changed.
   */
  async write(data: Buffer, signal?: AbortSignal): Promise<number> {
    this.checkOpen();
    const { parts } = this.options.writePath;
    let taken = 0;
    try {
      while (taken < data.length) {
        this.throwIfFailed();
        if (this.current === undefined) {
          if (this.nextPartNumber > MAX_PARTS) {
            throw new FuseError(Errno.EFBIG, `${this.options.key}: a streamed file cannot exceed ${MAX_PARTS} parts; raise partSizeBytes`);
          }
          const buffer = await parts.acquire(partSizeFor(this.nextPartNumber, this.options.writePath.config), signal);
          this.current = new PartBuffer(this.nextPartNumber++, buffer);
        }
        const part = this.current;
        // A part filled by an earlier write whose wait for a slot was aborted goes first.
        if (!part.full) {
          const step = part.append(data.subarray(taken));
          taken += step;
          // Count bytes as soon as they are buffered, so size stays right even if sending the part fails below.
          this.written += step;
        }
        if (part.full) {
          // The part stays current until a slot is free and the upload exists: an abort of either wait leaves it for the
          // next write or commit (the upload's creation goes on, and is not asked for twice).
          await this.freeSlot(signal);
          await this.started(signal);
          this.current = undefined;
          await this.send(part);
        }
      }
    } catch (error) {
      if (signal?.aborted && error === signal.reason && taken > 0) return taken;
      throw error;
    }
    return taken;
  }

  /**
   * Makes the bytes written so far the object: waits for every part, then completes the upload (or PUTs the only
   * buffer). When it returns the store has acknowledged the object, which is the durability close and fsync promise.
   */
  async commit(): Promise<ObjectInfo> {
    this.checkOpen();
    const { store, key } = this.options;
    let info: ObjectInfo;
    if (this.upload === undefined) {
      // No part was ever full: the whole file is in the buffer still filling (or nothing was written).
      const part = this.current;
      this.current = undefined;
      try {
        info = await store.put(key, part?.bytes() ?? Buffer.alloc(0));
        this.options.onAcknowledged?.();
      } finally {
        if (part) this.options.writePath.parts.release(part.data);
      }
    } else {
      const last = this.current;
      this.current = undefined;
      if (last) await this.send(last);
      await this.settle();
      this.throwIfFailed();
      info = await (await this.upload).complete();
      this.options.onAcknowledged?.();
    }
    this.state = 'committed';
    return info;
  }

  /**
   * Hands over the buffered bytes when everything is still in memory (see inMemory) and frees them: the caller
   * writes them to a staging file instead, and nothing ever reached the store.
   */
  takeBuffered(): Buffer {
    if (!this.inMemory) throw new Error(`${this.options.key}: parts already went to the store; commit() instead`);
    const part = this.current;
    this.current = undefined;
    this.state = 'aborted';
    if (!part) return Buffer.alloc(0);
    // A copy, so the part's reservation can be released now rather than when the caller is done with the bytes.
    const bytes = Buffer.from(part.bytes());
    this.options.writePath.parts.release(part.data);
    return bytes;
  }

  /**
   * Discards everything: frees the buffer still filling and hands the multipart upload, if any, to the mount's
   * aborter, which aborts it in the background once the parts still uploading settled (S3 may otherwise keep a part
   * that lands after the abort), retrying while the store fails. Returns at once; safe to call more than once.
   */
  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    if (this.current) {
      this.options.writePath.parts.release(this.current.data);
      this.current = undefined;
    }
    const settled = this.settle();
    // An upload still being created is abandoned once it exists; one whose creation failed has nothing to abort.
    this.upload?.then((upload) => upload.abandon(settled), () => undefined);
  }

  /** Waits until fewer than maxPartsInFlight parts are uploading (the per-file parallelism cap), or `signal` aborts. */
  private async freeSlot(signal?: AbortSignal): Promise<void> {
    while (this.inFlight.size >= this.options.writePath.config.maxPartsInFlight) await untilAborted(Promise.race(this.inFlight), signal);
  }

  /** The multipart upload, created at the first call (waiting for it ends when `signal` aborts; its creation goes on). */
  private started(signal?: AbortSignal): Promise<TrackedUpload> {
    if (!this.upload) {
      this.upload = this.options.writePath.uploads.start(this.options.store, this.options.key);
      // Awaited by every send; a write interrupted while it is created must not leave its failure unhandled.
      this.upload.catch(() => undefined);
    }
    return untilAborted(this.upload, signal);
  }

  /** Starts the upload of a full (or last) part once a slot is free; the part's memory is released when it settles. */
  private async send(part: PartBuffer): Promise<void> {
    const { writePath } = this.options;
    let upload: TrackedUpload;
    try {
      await this.freeSlot();
      this.throwIfFailed();
      upload = await this.started();
    } catch (error) {
      writePath.parts.release(part.data);
      throw error;
    }
    const task = (async () => {
      try {
        await upload.uploadPart(part.partNumber, part.bytes());
        this.options.onAcknowledged?.();
      } catch (error) {
        this.failure ??= { error };
      } finally {
        // The upload settled: the SDK is done reading the buffer, which may now take the next part's bytes.
        writePath.parts.release(part.data);
      }
    })();
    this.inFlight.add(task);
    // Registered before anyone races on the task, so the slot is free by the time a waiter wakes up.
    void task.then(() => this.inFlight.delete(task));
  }

  /** Waits until no part is uploading. */
  private async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new Error(`${this.options.key}: the streaming upload is already ${this.state}`);
  }
}
