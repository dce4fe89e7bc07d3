// Every multipart upload the write path starts goes through here: recorded in the state directory before its first
// part, forgotten when it completes, and aborted in the background (with retries) when it is abandoned.
import type { Logger } from '../../log/logger';
import type { MultipartUpload, ObjectInfo, ObjectStore } from '../../objectstore/store';
import { UploadAborter } from './upload-aborter';
import type { UploadRecord } from './upload-record';

/** A multipart upload of the write path: MultipartUpload with abandon() in place of abort(). */
export interface TrackedUpload {
  readonly key: string;
  uploadPart(partNumber: number, body: Buffer): Promise<void>;
  /** Completes the upload (the object appears) and forgets it in the record. */
  complete(): Promise<ObjectInfo>;
  /**
   * Gives the upload up: it is aborted in the background once `after` settles (the parts still uploading), with
   * retries; returns at once, so the writer's error reply never waits for the store.
   */
  abandon(after?: Promise<unknown>): void;
}

/** What MultipartUploads works with. */
export interface MultipartUploadsOptions {
  /** Retries the aborts. */
  aborter: UploadAborter;
  /** The state directory's record; none: uploads are not recorded (tests, or a mount without a state directory). */
  record?: UploadRecord;
  /** The bucket the mount writes to, stored with each record entry. */
  bucket: string;
  logger: Logger;
}

/** The multipart uploads of one mount. */
export class MultipartUploads {
  private recordFailureLogged = false;

  constructor(private readonly options: MultipartUploadsOptions) {}

  /** The aborter (for tests and unmount). */
  get aborter(): UploadAborter {
    return this.options.aborter;
  }

  /** Starts an upload of `key`; an upload the store gives an id is in the record before this resolves. */
  async start(store: ObjectStore, key: string): Promise<TrackedUpload> {
    const upload = await store.createMultipartUpload(key);
    const { record, bucket } = this.options;
    const uploadId = upload.uploadId;
    if (record && uploadId !== undefined) {
      try {
        await record.add({ bucket, key, uploadId, startedAt: new Date().toISOString() });
      } catch (error) {
        // The write goes on: losing the record only loses the clean-up after a crash, which a lifecycle rule also does.
        if (!this.recordFailureLogged) {
          this.recordFailureLogged = true;
          this.options.logger.error({ file: record.file, err: error }, 'cannot write the upload record: uploads of a mount that dies are not aborted by the next one; fix the state directory (--state-dir)');
        }
      }
    }
    return this.track(upload);
  }

  /**
   * Aborts the uploads a previous mount with this state directory recorded and did not finish (it died): each in the
   * background, with retries, logged with how many there were and, once they settle, how many were aborted. Entries of
   * another bucket cannot be aborted from here: they are logged (to abort by hand) and dropped. Returns their number.
   */
  async abortPrevious(store: ObjectStore): Promise<number> {
    const { record, bucket, logger, aborter } = this.options;
    if (!record) return 0;
    const previous = await record.load();
    if (previous.length === 0) return 0;
    const ours = previous.filter((upload) => upload.bucket === bucket);
    const abortById = store.abortMultipartUpload?.bind(store);
    const foreign = abortById ? previous.filter((upload) => upload.bucket !== bucket) : previous;
    for (const upload of foreign) {
      logger.warn({ ...upload, file: record.file }, 'the upload record lists an upload this mount cannot abort (another bucket or store): abort it by hand, or let a lifecycle rule do it');
      void record.remove(upload.uploadId);
    }
    if (!abortById) return 0;
    logger.info({ uploads: ours.length, file: record.file }, 'aborting the multipart uploads a previous mount left unfinished');
    const outcomes = ours.map((upload) => aborter.abort({
      key: upload.key,
      uploadId: upload.uploadId,
      abort: () => abortById(upload.key, upload.uploadId),
      aborted: () => record.remove(upload.uploadId),
    }));
    void Promise.all(outcomes).then((results) => {
      const aborted = results.filter(Boolean).length;
      logger.info({ aborted, failed: results.length - aborted }, `aborted ${aborted} of the ${results.length} multipart uploads a previous mount left unfinished`);
    });
    return ours.length;
  }

  /**
   * At unmount: waits up to `timeoutMs` for aborts still being retried (the rest stay recorded for the next mount),
   * then for the record's last write.
   */
  async close(timeoutMs: number): Promise<void> {
    await this.options.aborter.drain(timeoutMs);
    await this.options.record?.flushed();
  }

  private track(upload: MultipartUpload): TrackedUpload {
    const { record, aborter } = this.options;
    const forget = () => (record && upload.uploadId !== undefined ? record.remove(upload.uploadId) : Promise.resolve());
    return {
      key: upload.key,
      uploadPart: (partNumber, body) => upload.uploadPart(partNumber, body),
      complete: async () => {
        const info = await upload.complete();
        void forget();
        return info;
      },
      abandon: (after) => {
        void aborter.abort({
          key: upload.key,
          ...(upload.uploadId !== undefined && { uploadId: upload.uploadId }),
          abort: () => upload.abort(),
          aborted: forget,
          ...(after && { after }),
        });
      },
    };
  }
}
