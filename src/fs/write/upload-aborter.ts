// Aborting multipart uploads in the background, retried with bounded exponential backoff: an abort tried once while
// the store is down would leave the upload's parts in the bucket (billed) until a lifecycle rule removes them.
import type { Logger } from '../../log/logger';
import { backoffDelay } from '../../util/backoff';
import { sleepUnlessAborted } from '../../util/sleep';

/** How an abort is retried (AbortRetryPolicy fields come from the write-path configuration). */
export interface AbortRetryPolicy {
  /** Tries per upload, the first one included. */
  attempts: number;
  /** The wait before the first retry; each later wait doubles. */
  firstDelayMs: number;
  /** No wait is longer than this. */
  maxDelayMs: number;
}

/** Waits `ms`, or less when `signal` aborts (then it resolves early); exposed for testing with a fake clock. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** The real timer, cut short (without an error) by the signal. */
export const timerSleep: Sleep = sleepUnlessAborted;

/** One upload to abort. */
export interface AbortJob {
  key: string;
  uploadId?: string;
  /** Sends the abort; resolves when the store confirmed it (an upload already gone counts as aborted). */
  abort(): Promise<void>;
  /** Settles before the first try: parts still uploading, which S3 could otherwise keep after the abort. */
  after?: Promise<unknown>;
  /** Runs once the abort succeeded (to forget the upload in the record). */
  aborted?(): Promise<void> | void;
}

/** The wait before retry number `retry` (1-based) under `policy`. */
export function retryDelay(policy: AbortRetryPolicy, retry: number): number {
  return backoffDelay({ baseMs: policy.firstDelayMs, maxMs: policy.maxDelayMs }, retry);
}

/**
 * Runs aborts in the background: abort() returns at once (a writer's EIO does not wait for the store), each job is
 * tried up to policy.attempts times with doubling waits, and drain() waits a bounded time for the lot at unmount.
 * An upload still not aborted when its tries run out, or at drain, stays in the upload record for the next mount.
 */
export class UploadAborter {
  private readonly running = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly policy: AbortRetryPolicy,
    private readonly logger: Logger,
    private readonly sleep: Sleep = timerSleep,
  ) {}

  /** Aborts still running (for tests and logs). */
  get pending(): number {
    return this.running.size;
  }

  /** Starts aborting `job` in the background; the promise (which never rejects) says whether it was aborted in the end. */
  abort(job: AbortJob): Promise<boolean> {
    const outcome = this.run(job);
    const tracked: Promise<void> = outcome.then(() => {
      this.running.delete(tracked);
    });
    this.running.add(tracked);
    return tracked.then(() => outcome);
  }

  /** Resolves once no abort is running (for tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  /** Waits up to `timeoutMs` for the running aborts, then stops retrying; resolves with how many were left unfinished. */
  async drain(timeoutMs: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.idle(), timedOut]);
    clearTimeout(timer);
    const left = this.running.size;
    this.stopping.abort();
    if (left > 0) this.logger.warn({ left, timeoutMs }, 'multipart uploads not yet aborted at unmount: they stay in the upload record, and the next mount with this state directory aborts them');
    return left;
  }

  private async run(job: AbortJob): Promise<boolean> {
    const { key, uploadId } = job;
    await job.after?.catch(() => undefined);
    for (let attempt = 1; ; attempt++) {
      try {
        await job.abort();
        if (attempt > 1) this.logger.info({ key, uploadId, attempt }, 'aborted the multipart upload after retrying');
        await job.aborted?.();
        return true;
      } catch (error) {
        const giveUp = attempt >= this.policy.attempts || this.stopping.signal.aborted;
        if (giveUp) {
          this.logger.error(
            { key, uploadId, attempts: attempt, err: error },
            'could not abort a multipart upload: it stays in the upload record for the next mount, and its parts stay billed until then or until a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes them',
          );
          return false;
        }
        const delayMs = retryDelay(this.policy, attempt);
        this.logger.warn({ key, uploadId, attempt, retryInMs: delayMs, err: error }, 'abort of a multipart upload failed; retrying');
        await this.sleep(delayMs, this.stopping.signal);
        if (this.stopping.signal.aborted) return false;
      }
    }
  }
}
