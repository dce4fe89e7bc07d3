// Any write pattern a multipart stream cannot take (random writes, appends, partial overwrites, truncation,
// reading back): the file lives in a local staging file and the whole object is uploaded again on flush/fsync.
import type { promises as fsp } from 'node:fs';
import type { Logger } from '../../log/logger';
import type { ObjectInfo, ObjectStore } from '../../objectstore/store';
import { RangeSet } from './range-set';
import { forEachLimited } from '../../util/for-each-limited';
import { readRange, uploadFile } from './upload-file';
import type { WritePath } from './write-path';

/** What a StagingFile stages. */
export interface StagingFileOptions {
  store: ObjectStore;
  key: string;
  /** The object as it is now in the store (its bytes seed the file); none for a new or truncated file. */
  existing?: ObjectInfo;
  writePath: WritePath;
  logger: Logger;
  /** True when the store does not hold this content yet even without writes (a new file): flush must upload. */
  dirty?: boolean;
  /** Called whenever the store acknowledges a part or the object, or sends a range of the seed: the upload progresses. */
  onAcknowledged?: () => void;
}

/**
 * A local copy of one file, seeded lazily from the existing object: a range is fetched (ranged GETs pinned to the
 * object's ETag) only when a read needs it or at upload, and never where writes already covered it, so O_TRUNC,
 * full rewrites and appends download nothing until flush, and a full rewrite nothing at all.
 *
 * Not safe for concurrent calls: the owning write handle serialises them.
 */
export class StagingFile {
  private file: fsp.FileHandle | undefined;
  private sizeBytes: number;
  /** Bytes [0, seedLimit) are the existing object's unless covered by `present`; past it, the file's own. */
  private seedLimit: number;
  private readonly present = new RangeSet();
  private existing: ObjectInfo | undefined;
  private dirty: boolean;

  constructor(private readonly options: StagingFileOptions) {
    this.existing = options.existing;
    this.sizeBytes = options.existing?.size ?? 0;
    this.seedLimit = this.sizeBytes;
    this.dirty = options.dirty ?? false;
  }

  /** The file's size as its writer sees it. */
  get size(): number {
    return this.sizeBytes;
  }

  /** True when the file differs from the object in the store. */
  get isDirty(): boolean {
    return this.dirty;
  }

  /** Writes `data` at `offset` (past the end leaves a hole of zeros), after checking the staging directory's free space. */
  async write(offset: number, data: Buffer): Promise<number> {
    const file = await this.openFile();
    await this.options.writePath.staging.reserve(data.length, this.options.key, this.options.logger);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await file.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
    this.present.add(offset, offset + data.length);
    this.sizeBytes = Math.max(this.sizeBytes, offset + data.length);
    this.dirty = true;
    return data.length;
  }

  /** Reads up to `length` bytes at `offset`, fetching the part of the existing object it needs first. */
  async read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(this.sizeBytes, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    // Fetch whole seedRangeBytes-aligned ranges: the kernel reads in small pieces, and one GET per piece would be slow.
    const range = this.options.writePath.config.seedRangeBytes;
    await this.fill(Math.floor(offset / range) * range, Math.ceil(end / range) * range);
    return readRange(await this.openFile(), offset, end - offset);
  }

  /** Sets the size: shrinking drops bytes (also from what is left to fetch), growing adds zeros. */
  async truncate(size: number): Promise<void> {
    if (size === this.sizeBytes) return;
    const file = await this.openFile();
    if (size > this.sizeBytes) await this.options.writePath.staging.reserve(size - this.sizeBytes, this.options.key, this.options.logger);
    await file.truncate(size);
    this.seedLimit = Math.min(this.seedLimit, size);
    this.sizeBytes = size;
    this.dirty = true;
  }

  /**
   * When dirty: fetches whatever the writes did not cover, uploads the whole file, and returns once the store has
   * acknowledged the new object. Stays dirty on failure, so a later flush or fsync tries again.
   */
  async upload(): Promise<ObjectInfo | undefined> {
    if (!this.dirty) return undefined;
    await this.fill(0, this.sizeBytes);
    const file = await this.openFile();
    const info = await uploadFile(this.options.store, this.options.key, file, this.sizeBytes, this.options.writePath, this.options.logger, this.options.onAcknowledged);
    this.existing = info;
    this.dirty = false;
    return info;
  }

  /** Closes the staging file (already unlinked: its disk space is freed now). */
  async close(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    await file?.close();
  }

  /** Opens the staging file on first use: a handle that only flushes a clean file never touches the disk. */
  private async openFile(): Promise<fsp.FileHandle> {
    this.file ??= await this.options.writePath.staging.open();
    return this.file;
  }

  /** Copies the existing object's bytes into [start, end) wherever no write covered them, in parallel ranged GETs. */
  private async fill(start: number, end: number): Promise<void> {
    const { store, key, writePath, logger } = this.options;
    const existing = this.existing;
    const gaps = this.present.gaps(start, Math.min(end, this.seedLimit));
    if (gaps.length === 0 || existing === undefined) return;
    const file = await this.openFile();
    const ranges: Array<[number, number]> = [];
    for (const [gapStart, gapEnd] of gaps) {
      for (let at = gapStart; at < gapEnd; at += writePath.config.seedRangeBytes) ranges.push([at, Math.min(gapEnd, at + writePath.config.seedRangeBytes)]);
    }
    await writePath.staging.reserve(ranges.reduce((sum, [a, b]) => sum + b - a, 0), key, logger);
    const tasks = ranges.map(([rangeStart, rangeEnd]) => async () => {
      // Pinned to the version the handle started from: if someone replaced the object meanwhile, mixing its
      // bytes with ours would be silent corruption, so the GET fails (PreconditionFailed) instead.
      const result = await store.get(key, { range: { start: rangeStart, end: rangeEnd }, ifMatch: existing.etag });
      let at = rangeStart;
      for await (const chunk of result.body as AsyncIterable<Buffer>) {
        let done = 0;
        while (done < chunk.length) done += (await file.write(chunk, done, chunk.length - done, at + done)).bytesWritten;
        at += chunk.length;
      }
      if (at !== rangeEnd) throw new Error(`${key}: the store returned ${at - rangeStart} bytes for the range [${rangeStart}, ${rangeEnd})`);
      this.present.add(rangeStart, rangeEnd);
      this.options.onAcknowledged?.();
    });
    await forEachLimited(tasks, writePath.config.maxPartsInFlight, (task) => task());
  }
}
