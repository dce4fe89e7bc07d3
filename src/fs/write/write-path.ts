// The per-mount state every write handle shares: configuration, memory budget, staging directory, multipart uploads.
import { silentLogger, type Logger } from '../../log/logger';
import { writePathSchema, type WritePathConfig, type WritePathConfigInput } from '../../config/write-path';
import { MemoryBudget } from './memory-budget';
import { MultipartUploads } from './multipart-uploads';
import { PartBufferPool } from './part-pool';
import { StagingDir, statfsFreeSpace, type FreeSpace } from './staging-dir';
import { timerSleep, UploadAborter, type Sleep } from './upload-aborter';
import type { UploadRecord } from './upload-record';

/** Shared by all write handles of one mount; build one per mount with createWritePath(). */
export interface WritePath {
  readonly config: WritePathConfig;
  /** Caps the bytes held in part buffers across all files of the mount. */
  readonly budget: MemoryBudget;
  /** Recycled part buffers of the streaming uploads, reserved from `budget`. */
  readonly parts: PartBufferPool;
  readonly staging: StagingDir;
  /** Starts, records and aborts the mount's multipart uploads. */
  readonly uploads: MultipartUploads;
}

/** Side effects createWritePath() takes as parameters, so tests can replace them. */
export interface WritePathDependencies {
  /** Free bytes in the staging directory's filesystem; statfs by default. */
  freeSpace?: FreeSpace;
  /** The state directory's record of unfinished uploads; none by default (uploads are not recorded). */
  record?: UploadRecord;
  /** The bucket written to, kept in the record with each upload. */
  bucket?: string;
  /** The waits between abort retries; real timers by default. */
  sleep?: Sleep;
  /** Where abort failures and retries are logged; silent by default. */
  logger?: Logger;
}

/** Validates the configuration (filling defaults) and builds the per-mount write state; touches no disk yet. */
export function createWritePath(config: WritePathConfigInput = {}, dependencies: WritePathDependencies = {}): WritePath {
  const parsed = writePathSchema.parse(config);
  const budget = new MemoryBudget(parsed.memoryBudgetBytes);
  const logger = dependencies.logger ?? silentLogger();
  const aborter = new UploadAborter(
    { attempts: parsed.abortAttempts, firstDelayMs: parsed.abortRetryDelayMs, maxDelayMs: parsed.abortRetryMaxDelayMs },
    logger,
    dependencies.sleep ?? timerSleep,
  );
  return {
    config: parsed,
    budget,
    // One file's pipeline (the part filling plus those uploading) recycles fully; more writers allocate.
    parts: new PartBufferPool(parsed.partSizeBytes, parsed.maxPartsInFlight + 1, budget),
    staging: new StagingDir(parsed.stagingDir, parsed.stagingMinFreeBytes, dependencies.freeSpace ?? statfsFreeSpace),
    uploads: new MultipartUploads({ aborter, bucket: dependencies.bucket ?? '', logger, ...(dependencies.record && { record: dependencies.record }) }),
  };
}
