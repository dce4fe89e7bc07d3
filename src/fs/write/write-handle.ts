// The write handle the filesystem gets at create/open: streams while the writes are sequential, and switches to a
// staging file, transparently, as soon as they are not.
import type { Logger } from '../../log/logger';
import type { ObjectInfo, ObjectStore } from '../../objectstore/store';
import { Errno } from '../errno';
import { FuseError } from '../fuse/operations';
import type { OpenFile } from '../open-file';
import { writeFailure } from './errors';
import { StagingFile } from './staging-file';
import { StreamingUpload } from './streaming-upload';
import type { WritePath } from './write-path';

/** What createWriteHandle() needs to know of the file being opened for writing. */
export interface WriteHandleOptions {
  store: ObjectStore;
  /** The object's key in the store. */
  key: string;
  /** The object as it exists now (from head/stat at open), if it exists. */
  existing?: ObjectInfo;
  /** O_TRUNC (or a new file): the old content is gone from the start. */
  truncate: boolean;
  /** O_APPEND: every write goes to the end of the file, whatever offset the kernel sends. */
  append: boolean;
  /** The mount's shared write state (createWritePath). */
  writePath: WritePath;
  logger: Logger;
}

type Mode =
  | { kind: 'streaming'; upload: StreamingUpload }
  | { kind: 'staging'; file: StagingFile }
  | { kind: 'failed'; error: FuseError }
  | { kind: 'released'; size: number };

/**
 * One open file with write access. A new or truncated file starts as a StreamingUpload; anything a stream cannot
 * take (a write elsewhere than at its end, a read of written data, a truncate, a write after a close or fsync)
 * turns it into a StagingFile first:
 * - while every byte is still in one in-memory part (small files), the bytes move to the staging file and nothing
 *   has touched the store;
 * - otherwise the stream is committed (the object now holds the bytes so far, durably) and the staging file is
 *   seeded lazily from that object. Parts already uploaded cannot be read back from an unfinished multipart upload,
 *   and keeping a local copy of every streamed byte would double the disk traffic of every checkpoint to help the
 *   rare writer that seeks back.
 *
 * When the object changes (FLUSH is per descriptor, not per file: shells and dd open, dup2 and close the original
 * before writing, and every close sends one):
 * - FLUSH publishes only when something was written (or the size set) through the handle since it opened or since
 *   its last successful persist; any other FLUSH is a no-op, so the stream goes on and the old object stays;
 * - fsync publishes whatever the store does not have yet, an empty new or truncated file included;
 * - RELEASE (the last descriptor gone) publishes what the flushes left: a new or O_TRUNC file with nothing written
 *   becomes an empty object then, and writes no FLUSH covered (mmap) are published too; but a handle whose last
 *   flush or fsync failed (the writer was told EIO), or whose stream failed, discards instead.
 * A close with data does publish what was written so far, also when other descriptors of the file stay open (a
 * write, dup2, close of the original, more writes): FUSE cannot tell the last close from the others.
 *
 * Calls are serialised: the kernel may send WRITE, READ and FLUSH of one handle concurrently, and both modes rely
 * on seeing them one at a time in arrival order.
 */
export class WriteHandle implements OpenFile {
  private mode: Mode;
  private queue: Promise<unknown> = Promise.resolve();
  /** Bytes written or the size set since open or the last successful persist: the next FLUSH publishes them. */
  private written = false;
  /** A new or truncated file the store does not have yet although nothing is written: RELEASE (or fsync) publishes it. */
  private deferred: boolean;
  /** The last flush or fsync failed: the writer was told, so RELEASE must not publish behind its back. */
  private persistFailed = false;
  /** Set by abandon(): the writer was told a write failed while it was still running; every later call fails so. */
  private abandoned: FuseError | undefined;
  /** The progress callback of the call running now (calls run one at a time). */
  private progress: (() => void) | undefined;
  /** What the stream and the staging file call when the store acknowledges something: the running call progresses. */
  private readonly acknowledged = (): void => this.progress?.();

  constructor(private readonly options: WriteHandleOptions) {
    const { existing, truncate } = options;
    this.deferred = existing === undefined || truncate;
    if (existing === undefined || truncate || existing.size === 0) {
      this.mode = { kind: 'streaming', upload: this.streamingUpload() };
    } else {
      this.mode = { kind: 'staging', file: new StagingFile({ ...options, existing, onAcknowledged: this.acknowledged }) };
    }
  }

  /** Which implementation serves the handle now (for tests and logs). */
  get kind(): Mode['kind'] {
    return this.mode.kind;
  }

  /** The file size as written through this handle. */
  get size(): number {
    return sizeOf(this.mode);
  }

  /** True when the handle holds something the store does not have yet, that its release would publish. */
  get unpublished(): boolean {
    return (this.written || this.deferred) && !this.persistFailed && !this.abandoned && this.mode.kind !== 'failed' && this.mode.kind !== 'released';
  }

  /** Reads back from this handle: past the end returns nothing, anything else needs the staging file. */
  read(offset: number, size: number): Promise<Buffer> {
    return this.serialise('read', async () => {
      if (this.mode.kind === 'streaming' && offset >= this.mode.upload.size) return Buffer.alloc(0);
      return (await this.staging('read of data not yet flushed')).read(offset, size);
    });
  }

  /**
   * Writes at `offset` (at the end with O_APPEND); returns the bytes taken once they are buffered or staged, not yet
   * durable. When `signal` aborts while the stream waits for memory or an upload slot, returns the bytes taken before
   * (a short write), or rejects with the signal's reason having taken none; the handle carries on either way.
   */
  write(offset: number, data: Buffer, signal?: AbortSignal): Promise<number> {
    return this.serialise('write', async () => {
      const at = this.options.append ? this.size : offset;
      if (data.length === 0) return 0;
      if (this.mode.kind === 'streaming' && at === this.mode.upload.size) {
        const taken = await this.mode.upload.write(data, signal);
        this.written = true;
        return taken;
      }
      const reason = this.mode.kind === 'streaming' ? `write at ${at} while the stream is at ${this.mode.upload.size}` : 'write';
      const staged = await (await this.staging(reason)).write(at, data);
      this.written = true;
      return staged;
    }, { signal });
  }

  /** ftruncate(2) / setattr(size) through this handle. */
  truncate(size: number): Promise<void> {
    return this.serialise('truncate', async () => {
      if (this.mode.kind === 'streaming' && size === this.mode.upload.size) return;
      await (await this.staging(`truncate to ${size}`)).truncate(size);
      this.written = true;
    });
  }

  /**
   * close(2) of one descriptor: when something was written since open or the last persist, returns once the store
   * acknowledged the whole object; otherwise does nothing (see the class comment: a dup2 before the first write).
   */
  flush(onProgress?: () => void): Promise<void> {
    return this.serialise('flush', async () => {
      if (this.written) await this.persist();
    }, { progress: onProgress });
  }

  /** fsync(2): after it returns, the store holds everything written so far (an empty new or truncated file too). */
  fsync(onProgress?: () => void): Promise<void> {
    return this.serialise('fsync', async () => {
      if (this.written || this.deferred) await this.persist();
    }, { progress: onProgress });
  }

  /**
   * The writer was told a call failed while it still ran (its deadline passed): from now on every call but release
   * fails with that error, the stream is aborted, and release publishes nothing, so what the writer was told failed
   * never lands in the store.
   */
  abandon(reason: Error): void {
    if (this.abandoned || this.mode.kind === 'released') return;
    this.abandoned = reason instanceof FuseError ? reason : new FuseError(Errno.EIO, reason.message, { cause: reason });
    this.options.logger.warn({ key: this.options.key, size: this.size, err: reason }, 'a write to this file failed while it still ran: discarding what the store does not have yet');
    if (this.mode.kind === 'streaming') this.mode.upload.abort();
  }

  /**
   * The last descriptor closed: publishes what the flushes left unpublished (see the class comment), unless the
   * writer was told a flush failed; then frees the stream or the staging file. A failure here has nobody to tell:
   * it is logged, the object keeps its previous content, and the call resolves.
   */
  release(): Promise<void> {
    return this.serialise('release', async () => {
      const mode = this.mode;
      const publish = this.unpublished;
      this.mode = { kind: 'released', size: sizeOf(mode) };
      const { key, logger } = this.options;
      if (mode.kind === 'failed' || mode.kind === 'released') return;
      if ((this.persistFailed || this.abandoned) && (this.written || this.deferred)) {
        logger.warn({ key, size: sizeOf(mode) }, 'released after a failed flush: discarding the writes (the writer was told)');
      }
      try {
        if (publish) {
          if (mode.kind === 'streaming') await mode.upload.commit();
          else await mode.file.upload();
          logger.debug({ key, size: sizeOf(mode) }, 'published at release');
        }
      } catch (error) {
        logger.error({ key, size: sizeOf(mode), err: error }, 'could not publish the file when its last descriptor closed: the object keeps its previous content');
      } finally {
        if (mode.kind === 'streaming') mode.upload.abort();
        else await mode.file.close();
      }
    });
  }

  /** Makes the store hold exactly what was written; a stream becomes a clean staging file over the new object. */
  private async persist(): Promise<void> {
    const mode = this.mode;
    try {
      if (mode.kind === 'streaming') {
        const info = await mode.upload.commit();
        // S3 cannot append: later writes through this handle rewrite the object from a staging file seeded from it;
        // unless it is empty (an fsync before the first write), which a new stream from offset 0 replaces as well.
        this.mode = info.size === 0 ? { kind: 'streaming', upload: this.streamingUpload() } : { kind: 'staging', file: this.stagingFile(info, false) };
      } else if (mode.kind === 'staging') {
        await mode.file.upload();
      }
    } catch (error) {
      this.persistFailed = true;
      throw error;
    }
    this.written = false;
    this.deferred = false;
    this.persistFailed = false;
  }

  /** The staging file, switching from the stream first when needed (see the class comment). */
  private async staging(reason: string): Promise<StagingFile> {
    const mode = this.mode;
    if (mode.kind === 'staging') return mode.file;
    if (mode.kind !== 'streaming') throw new FuseError(Errno.EBADF);
    const { key, logger } = this.options;
    if (mode.upload.inMemory) {
      const bytes = mode.upload.takeBuffered();
      const file = this.stagingFile(undefined, true);
      logger.debug({ key, reason, size: bytes.length }, 'switching to a staging file: moving the buffered bytes');
      try {
        if (bytes.length > 0) await file.write(0, bytes);
      } catch (error) {
        // The bytes left memory and did not reach the disk: the stream stays the mode, and fails for good.
        await file.close();
        throw error;
      }
      this.mode = { kind: 'staging', file };
      return file;
    }
    logger.info({ key, reason, size: mode.upload.size }, 'switching to a staging file: committing the bytes streamed so far');
    const info = await mode.upload.commit();
    const file = this.stagingFile(info, false);
    this.mode = { kind: 'staging', file };
    return file;
  }

  private stagingFile(existing: ObjectInfo | undefined, dirty: boolean): StagingFile {
    return new StagingFile({ ...this.options, ...(existing && { existing }), dirty, onAcknowledged: this.acknowledged });
  }

  private streamingUpload(): StreamingUpload {
    return new StreamingUpload({ ...this.options, onAcknowledged: this.acknowledged });
  }

  /**
   * Runs `operation` after the previous calls settled, with `call.progress` told of what the store acknowledges
   * meanwhile. A failure is logged and becomes EIO (ENOSPC, EFBIG as such). A stream that failed is aborted and stays
   * failed: its bytes are gone, so every later call fails the same way rather than let a later close report success.
   * A staging file keeps its bytes and may succeed on a later flush. A call its `signal` ended (an interrupted write
   * that took nothing) changed nothing: the handle carries on.
   */
  private serialise<T>(name: string, operation: () => Promise<T>, call: { signal?: AbortSignal | undefined; progress?: (() => void) | undefined } = {}): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.abandoned && name !== 'release') throw this.abandoned;
      if (this.mode.kind === 'failed' && name !== 'release') throw this.mode.error;
      if (this.mode.kind === 'released') throw new FuseError(Errno.EBADF, `${name} ${this.options.key}: the handle was released`);
      this.progress = call.progress;
      try {
        return await operation();
      } catch (error) {
        if (call.signal?.aborted && error === call.signal.reason) throw error;
        const failure = writeFailure(error, name, this.options.key, this.options.logger);
        const mode = this.mode;
        if (mode.kind === 'streaming') {
          this.mode = { kind: 'failed', error: failure };
          // In the background: the writer gets its error now, not after the store answered the abort.
          mode.upload.abort();
        }
        throw failure;
      } finally {
        this.progress = undefined;
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

function sizeOf(mode: Mode): number {
  switch (mode.kind) {
    case 'streaming':
      return mode.upload.size;
    case 'staging':
      return mode.file.size;
    case 'released':
      return mode.size;
    default:
      return 0;
  }
}

/** Creates the write handle for a file opened with write access (see WriteHandleOptions for the flags' meaning). */
export function createWriteHandle(options: WriteHandleOptions): WriteHandle {
  return new WriteHandle(options);
}
