// The tuning of the write path of one mount: part sizes, parallelism, memory cap, staging directory.
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { MIN_PART_SIZE } from '../objectstore/store';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The largest part S3 accepts. */
export const MAX_PART_SIZE = 5 * GiB;

/** Options of the write path; another module nests it into the mount configuration. */
export const writePathSchema = z
  .object({
    /** Size of the first parts of a multipart upload, and of the part buffers filled by sequential writes. Default 8 MiB (S3's minimum is 5 MiB). */
    partSizeBytes: z.number().int().min(MIN_PART_SIZE).max(MAX_PART_SIZE).default(8 * MiB),
    /**
     * The part size doubles after every this many parts, so that a file larger than 10,000 first-size parts still
     * fits in S3's 10,000-part limit. Default 500: with the other defaults a file can reach about 1.9 TiB
     * (1 TiB uses about 6,100 parts) while small and medium files keep small parts.
     */
    partSizeDoublingParts: z.number().int().min(1).max(10_000).default(500),
    /** The part size stops growing here. Default 256 MiB (S3's maximum is 5 GiB). */
    maxPartSizeBytes: z.number().int().min(MIN_PART_SIZE).max(MAX_PART_SIZE).default(256 * MiB),
    /**
     * Parts of one file uploading at the same time. Measured through a real mount (bench/run.js seq-write, 1 GiB,
     * 1 writer, loopback versitygw, same session): 4, 8 and 16 in flight, and 16 MiB parts, all tied within the
     * noise (135-185 MiB/s end to end) because the writer's FUSE round trips and the server's CompleteMultipartUpload
     * (0.5-3 s for 128 parts) set the pace, and writes spent under 0.8 s of a 3-8 s run waiting for a slot at
     * every setting. 8 doubles the headroom for a real network's per-part latency for 32 MiB more per file
     * (the filling part and 8 uploading: 72 MiB). Default 8.
     */
    maxPartsInFlight: z.number().int().min(1).max(64).default(8),
    /**
     * Bytes of part buffers the whole mount may hold (filling plus uploading); a write that needs a new part
     * buffer waits while the mount is at this cap; recycled free part buffers count in it. Default 1 GiB (14 writers
     * with 8 parts of 8 MiB uploading and one filling each fit; more writers take turns).
     */
    memoryBudgetBytes: z.number().int().min(MIN_PART_SIZE).default(1 * GiB),
    /** Directory of staging files (non-sequential writes, appends, partial overwrites). Default <os tmpdir>/granary-staging. */
    stagingDir: z.string().min(1).default(path.join(os.tmpdir(), 'granary-staging')),
    /** Staging writes fail with ENOSPC rather than leave less than this free in the staging directory's filesystem. Default 1 GiB. */
    stagingMinFreeBytes: z.number().int().min(0).default(1 * GiB),
    /** A staging file up to this size is uploaded with one PUT; a larger one as a multipart upload. Default 16 MiB. */
    singlePutMaxBytes: z.number().int().min(0).max(MAX_PART_SIZE).default(16 * MiB),
    /** Size of each ranged GET that fills a staging file from the existing object. Default 8 MiB. */
    seedRangeBytes: z.number().int().min(64 * 1024).default(8 * MiB),
    /**
     * Tries of the abort of a multipart upload that failed or was given up, in the background (each try is itself one
     * S3 request with the client's own retries). Default 10: with the delays below, retries span about 4 minutes, so
     * a store that is down for a while still gets the abort; after that the upload stays in the state directory's
     * record for the next mount.
     */
    abortAttempts: z.number().int().min(1).max(100).default(10),
    /** The wait before the first retry of an abort; each later wait doubles. Default 1 s. */
    abortRetryDelayMs: z.number().int().min(0).default(1000),
    /** The longest wait between two tries of an abort. Default 60 s. */
    abortRetryMaxDelayMs: z.number().int().min(0).default(60_000),
    /**
     * At unmount, how long to wait for releases still publishing (RELEASE is asynchronous) and, then as long again,
     * for aborts still being retried, before exiting; aborts left over stay in the record for the next mount. Default
     * 5 s (the CSI node plugin gives a mount 10 s after SIGTERM before SIGKILL).
     */
    unmountDrainTimeoutMs: z.number().int().min(0).default(5000),
  })
  .refine((config) => config.maxPartSizeBytes >= config.partSizeBytes, {
    message: 'maxPartSizeBytes must be at least partSizeBytes',
    path: ['maxPartSizeBytes'],
  })
  .refine((config) => config.memoryBudgetBytes >= Math.max(config.maxPartSizeBytes, config.singlePutMaxBytes), {
    message: 'memoryBudgetBytes must hold at least one part of maxPartSizeBytes and one single put of singlePutMaxBytes, or those could never be buffered',
    path: ['memoryBudgetBytes'],
  });

/** A validated write-path configuration. */
export type WritePathConfig = z.infer<typeof writePathSchema>;

/** What a caller may pass; defaults fill the rest. */
export type WritePathConfigInput = z.input<typeof writePathSchema>;
