// The configuration of one `granary mount` process, validated before anything is touched.
import * as path from 'node:path';
import { z } from 'zod';

/** Log levels the mount process accepts. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Environment variable naming an inherited fd to which `ready\n` is written once the mount is live. */
export const READY_FD_ENV = 'GRANARY_READY_FD';

/** Tuning of the FUSE session; every default is what a mount gets unless told otherwise. */
export const fuseTuningSchema = z.object({
  /**
   * Reads of /dev/fuse kept outstanding. Each blocks one libuv threadpool thread while idle, so few
   * are needed: requests are dispatched asynchronously as soon as they are read. Default 4.
   */
  deviceReaders: z.number().int().min(1).max(64).default(4),
  /**
   * UV_THREADPOOL_SIZE for the mount process: the device readers plus the threads file I/O, DNS
   * lookups and crypto need (libuv's own default of 4 would all be taken by the readers). Default 20.
   */
  threadpoolSize: z.number().int().min(2).max(1024).default(20),
  /** Async (readahead) requests the kernel keeps in flight per mount; the kernel's own default is 12. Default 64. */
  maxBackground: z.number().int().min(1).max(0xffff).default(64),
  /** Kernel readahead cap in bytes; the kernel uses the smaller of this and its per-mount setting (128 KiB unless raised). Default 1 MiB. */
  maxReadahead: z.number().int().min(0).default(1024 * 1024),
  /** How long, after umount, to wait for the kernel to close the connection before exiting anyway (ms). Default 10 s. */
  unmountTimeoutMs: z.number().int().min(0).default(10_000),
});

/** Options of `granary mount`, as parsed from flags and environment. */
export const mountConfigSchema = z
  .object({
    /** s3://bucket/prefix (endpoint and credentials from the AWS_* environment) or a local folder. */
    source: z.string().trim().min(1, 'SOURCE is empty: pass s3://BUCKET/PREFIX or a local folder'),
    /** Where to mount: an existing, empty-of-mounts directory; made absolute. */
    mountpoint: z
      .string()
      .min(1, 'MOUNTPOINT is empty')
      .transform((value) => path.resolve(value)),
    /** Mount with `ro`: the kernel refuses writes. Default false (this version refuses writes with EROFS anyway). */
    readOnly: z.boolean().default(false),
    /** Log level of the JSON log on stderr. Default info. */
    logLevel: z.enum(LOG_LEVELS).default('info'),
    /** An inherited fd (from GRANARY_READY_FD) to write `ready\n` to once the mount is live; none by default. */
    readyFd: z.number().int().min(3).optional(),
    /** How long attributes and names are cached, by granary and by the kernel (ms). Default 1 s. */
    attrTimeoutMs: z.number().int().min(0).default(1000),
    /** Keys asked per LIST page when reading a directory. Default 1000 (S3's maximum). */
    listPageSize: z.number().int().min(1).max(1000).default(1000),
    /** Filesystem subtype: the mount shows as type `fuse.<subtype>`. Default "granary". */
    subtype: z.string().regex(/^[a-z0-9_-]+$/).default('granary'),
    fuse: fuseTuningSchema.default(fuseTuningSchema.parse({})),
  })
  .refine((config) => config.fuse.threadpoolSize >= config.fuse.deviceReaders + 4, {
    message: 'fuse.threadpoolSize must exceed fuse.deviceReaders by at least 4, or the readers starve file I/O',
    path: ['fuse', 'threadpoolSize'],
  });

/** A validated mount configuration. */
export type MountConfig = z.infer<typeof mountConfigSchema>;

/** What a caller may pass; defaults fill the rest. */
export type MountConfigInput = z.input<typeof mountConfigSchema>;

/** Validates `input` into a MountConfig; throws one readable error listing every problem. */
export function parseMountConfig(input: MountConfigInput): MountConfig {
  const result = mountConfigSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || 'config'}: ${issue.message}`);
    throw new Error(`invalid mount configuration: ${problems.join('; ')}`);
  }
  return result.data;
}

/** Reads the readiness fd from the environment (GRANARY_READY_FD), or undefined when unset. */
export function readyFdFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const value = env[READY_FD_ENV];
  if (value === undefined || value === '') return undefined;
  const fd = Number(value);
  if (!Number.isInteger(fd) || fd < 3) throw new Error(`${READY_FD_ENV}="${value}" is not an inherited file descriptor number (3 or more)`);
  return fd;
}
