// Tunables of the read path of one mount: block size, cache, readahead, fetch concurrency and retries.
// The mount configuration (config/mount.ts) nests readPathSchema; every default is documented here.
import { z } from 'zod';
import { blockSizeSchema } from '../blocks/block-size';
import { originFetchPolicySchema } from '../blocks/origin-fetch-policy';

const MiB = 1024 * 1024;

/** The read path's configuration; every field has the documented default a mount gets unless told otherwise. */
export const readPathSchema = z
  .object({
    /**
     * Size of one block: the aligned unit of caching, of sequential fetches and (next) of the cluster
     * cache's keys (key, ETag, block index). Large enough that one GET amortises S3's first-byte latency,
     * small enough that a random reader does not pay for much it will not read. 64 KiB to 64 MiB, like the
     * cache's (src/blocks/block-size.ts). Default 4 MiB.
     */
    blockSizeBytes: blockSizeSchema('the block size (--cache-block-size)'),
    /** Bytes of blocks the mount keeps in RAM (LRU), shared by every open file of the mount; at least two blocks. Default 256 MiB. */
    cacheBytes: z.number().int().min(0).default(256 * MiB),
    /**
     * GETs in flight at once per mount (demand and readahead together). With cacheBytes this bounds the
     * read path's memory: cacheBytes + maxConcurrentFetches × blockSizeBytes. Default 32.
     */
    maxConcurrentFetches: z.number().int().min(1).max(1024).default(32),
    /** Blocks prefetched once a reader is found sequential; doubles with each new block read. Default 1. */
    readaheadInitialBlocks: z.number().int().min(1).default(1),
    /**
     * The readahead window's ceiling, in blocks (8 × 4 MiB = 32 MiB, 8 GETs in flight per sequential reader).
     * Measured through a real mount (bench/run.js seq-read, 1 GiB, 1 reader, same session, alternating): 8
     * blocks gave 316-388 MiB/s, 16 gave 277-378, 32 (with 48 fetches) 323-367; the mount is CPU-bound on the
     * 2-core bench machine and fewer streams cost less per byte, while 32 MiB ahead still covers a real
     * network's first-byte latency at several hundred MiB/s. Default 8.
     */
    readaheadMaxBlocks: z.number().int().min(0).default(8),
    /**
     * How far (either way) a read may land from where the previous ones ended and still count as the same
     * sequential stream: the kernel's parallel readahead requests (1 MiB each, a few device readers) arrive
     * slightly out of order. Default 4 MiB.
     */
    sequentialSlackBytes: z.number().int().min(0).default(4 * MiB),
    /**
     * Bytes a stream must have read (from anywhere but offset 0) before it counts as sequential and
     * readahead starts; a stream that starts at offset 0 counts at once. Several times the size of one
     * random read (a 1 MiB pread may reach us as contiguous 128 KiB kernel requests), so random readers
     * practically never trigger it. Default 4 MiB.
     */
    sequentialThresholdBytes: z.number().int().min(0).default(4 * MiB),
    /**
     * What a sequential reader alone on its object version keeps in the cache of what it has read, beyond the
     * sequential slack; older blocks go back to the buffer pool at once, so a stream holds its readahead window and
     * this, not the whole cache (the kernel keeps the pages it read). A reader of the same version that opens a moment
     * later (replicas of a model server starting together; O_DIRECT readers, which the page cache does not serve)
     * finds these blocks here. Measured with the cache bench's hot-blocks rows (3 O_DIRECT readers on one mount, each
     * starting when the one before has read 64 MiB): releasing at the slack alone made the cache servers serve 0.50 of
     * the bytes read instead of 0.33. While several handles are open on one version nothing is released. Default 32 MiB.
     */
    keepBehindBytes: z.number().int().min(0).default(32 * MiB),
    /**
     * Share of cacheBytes that blocks prefetched but not yet read may take. Without it, many streams'
     * windows outgrow the cache and prefetched blocks are evicted before they are read, then fetched again.
     * Default 0.5.
     */
    readaheadCacheShare: z.number().min(0).max(1).default(0.5),
    /**
     * What a random (non-sequential) read fetches: the requested range rounded out to this unit, clipped to
     * its block (equal to blockSizeBytes: whole aligned blocks). Measured with random 1 MiB reads of a 1 GiB
     * object on the real server (bench/read-path.ts): whole 4 MiB blocks
     * moved 3.6× the bytes read and served 24-28 reads/s; 256 KiB units moved 1.2× and served 84-235 reads/s;
     * 64 KiB tied with 256 KiB within the noise. 256 KiB keeps neighbouring small reads (mmap faults) in one GET.
     * A piece of a read at least this long is fetched exactly instead (whole pages): through a real mount, 256 random
     * 1 MiB reads then cost 313 GETs of 237 MiB instead of 313 GETs of 300 MiB. Default 256 KiB.
     */
    randomReadUnitBytes: z.number().int().min(4096).default(256 * 1024),
    /**
     * The origin fetch policy of the mount's fills: fetchTimeoutMs (default 20 s per block, every try of the object
     * store included; then the read fails with EIO). The tries are the store's (S3StoreOptions.maxAttempts). Fields
     * and defaults are src/blocks/origin-fetch-policy.ts's, kept flat here.
     */
    ...originFetchPolicySchema.shape,
  })
  .refine((config) => config.cacheBytes >= 2 * config.blockSizeBytes, {
    message: 'the RAM cache (--ram-cache-bytes) must hold at least two blocks (2 × the block size, 8 MiB by default): with less, every read would fetch its whole block again',
    path: ['cacheBytes'],
  })
  .refine((config) => config.randomReadUnitBytes <= config.blockSizeBytes, {
    message: 'randomReadUnitBytes must not exceed blockSizeBytes',
    path: ['randomReadUnitBytes'],
  })
  .refine((config) => config.readaheadInitialBlocks <= Math.max(1, config.readaheadMaxBlocks), {
    message: 'readaheadInitialBlocks must not exceed readaheadMaxBlocks',
    path: ['readaheadInitialBlocks'],
  });

/** A validated read-path configuration. */
export type ReadPathConfig = z.infer<typeof readPathSchema>;

/** What a caller may pass; defaults fill the rest. */
export type ReadPathConfigInput = z.input<typeof readPathSchema>;

/** The read-path configuration with every default. */
export const DEFAULT_READ_PATH_CONFIG: ReadPathConfig = readPathSchema.parse({});
