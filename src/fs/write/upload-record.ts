// The mount's record of its unfinished multipart uploads, `uploads.json` in the volume's state directory, so that a
// mount started after this one died can abort what it left behind (S3 keeps, and bills, the parts of an upload
// nobody completes or aborts).
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import type { Logger } from '../../log/logger';

/** The file, in the state directory, that holds the record. */
export const UPLOADS_FILE = 'uploads.json';

/**
 * The most uploads the record holds (about 250 bytes each: 2.5 MB at most). A mount has one upload per file being
 * streamed or uploaded, plus the failed ones whose abort is still being retried; past the cap an upload is not
 * recorded (a warning says so) and only the bucket's lifecycle rule will clean it up if this mount dies.
 */
export const MAX_RECORDED_UPLOADS = 10_000;

const recordedUploadSchema = z.object({
  bucket: z.string(),
  key: z.string(),
  uploadId: z.string().min(1),
  /** When the upload started (ISO 8601), for the operator reading the file. */
  startedAt: z.string(),
});

/** One unfinished multipart upload: enough to abort it from another process. */
export type RecordedUpload = z.infer<typeof recordedUploadSchema>;

const recordFileSchema = z.object({ version: z.literal(1), uploads: z.array(recordedUploadSchema) });

/**
 * The set of unfinished uploads, mirrored to `<dir>/uploads.json`. Every change rewrites the file whole (a temporary
 * file, fsynced, renamed over it: a reader never sees half a file); changes that arrive while a write is running are
 * coalesced into the next one, so a burst of uploads costs a few writes, not one each.
 */
export class UploadRecord {
  private readonly entries = new Map<string, RecordedUpload>();
  /** Bumped by every change; `savedVersion` is the last one on disk. */
  private version = 0;
  private savedVersion = 0;
  private writes: Promise<void> = Promise.resolve();
  private created: Promise<unknown> | undefined;

  constructor(
    /** The volume's state directory (created on the first write). */
    readonly dir: string,
    private readonly logger: Logger,
    private readonly maxEntries = MAX_RECORDED_UPLOADS,
  ) {}

  /** The record's file. */
  get file(): string {
    return path.join(this.dir, UPLOADS_FILE);
  }

  /** The uploads recorded now. */
  get uploads(): RecordedUpload[] {
    return [...this.entries.values()];
  }

  /**
   * Reads what a previous mount left in the file into this record (it keeps them until they are removed, so they
   * survive this mount dying too). A missing file is an empty record; an unreadable one is logged and ignored.
   */
  async load(): Promise<RecordedUpload[]> {
    let text: string;
    try {
      text = await fsp.readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new Error(`cannot read the upload record ${this.file}: ${(error as Error).message}; check the state directory's permissions (--state-dir)`, { cause: error });
    }
    let parsed: z.infer<typeof recordFileSchema>;
    try {
      parsed = recordFileSchema.parse(JSON.parse(text));
    } catch (error) {
      this.logger.warn({ file: this.file, err: error }, 'the upload record is not valid JSON of the expected form: ignoring it (a bucket lifecycle rule must clean up what it listed)');
      return [];
    }
    for (const upload of parsed.uploads.slice(0, this.maxEntries)) this.entries.set(upload.uploadId, upload);
    return parsed.uploads;
  }

  /** Records `upload`; resolves once the file holds it (so the upload is never unknown on disk while it has parts). */
  async add(upload: RecordedUpload): Promise<void> {
    if (this.entries.size >= this.maxEntries) {
      this.logger.warn({ key: upload.key, uploadId: upload.uploadId, recorded: this.entries.size }, `the upload record is full (${this.maxEntries}): this upload is not recorded; only a bucket lifecycle rule cleans it up if the mount dies`);
      return;
    }
    this.entries.set(upload.uploadId, upload);
    await this.save();
  }

  /** Forgets the upload (completed or aborted); the file follows soon (a stale entry only costs a harmless abort later). */
  remove(uploadId: string): Promise<void> {
    if (!this.entries.delete(uploadId)) return Promise.resolve();
    return this.save().catch((error: unknown) => {
      this.logger.warn({ file: this.file, err: error }, 'could not update the upload record');
    });
  }

  /** Resolves once every change so far is on disk (at unmount). */
  async flushed(): Promise<void> {
    await this.writes.catch(() => undefined);
  }

  /** Queues a write of the current entries; a write already queued behind a running one picks up this change too. */
  private save(): Promise<void> {
    const wanted = ++this.version;
    const write = this.writes.catch(() => undefined).then(async () => {
      if (this.savedVersion >= wanted) return;
      const version = this.version;
      await this.write();
      this.savedVersion = Math.max(this.savedVersion, version);
    });
    this.writes = write;
    return write;
  }

  private async write(): Promise<void> {
    this.created ??= fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.created.catch((error: unknown) => {
      this.created = undefined;
      throw error;
    });
    const body = `${JSON.stringify({ version: 1, uploads: this.uploads }, null, 1)}\n`;
    const temporary = `${this.file}.tmp-${process.pid}`;
    const handle = await fsp.open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(temporary, this.file);
  }
}
