// The configuration of one `granary mount` process, validated before anything is touched.
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { readPathSchema } from './read-path';
import { writePathSchema } from './write-path';
import { cacheClientSchema } from './cache';
import { parseConfig, type ConfigParser } from './parse';

import { LOG_LEVELS } from './log-levels';
import { specialBitsProblem, type ModeOption } from './permission-mode';

export { LOG_LEVELS };

/** Environment variable naming an inherited fd to which `ready\n` is written once the mount is live. */
export const READY_FD_ENV = 'GRANARY_READY_FD';

/** A mode option: permission bits only; setuid, setgid and sticky are refused (see permission-mode.ts). */
function modeSchema(option: ModeOption) {
  return z
    .number()
    .int()
    .min(0)
    .max(0o7777)
    .superRefine((mode, context) => {
      const problem = specialBitsProblem(option, mode);
      if (problem) context.addIssue({ code: 'custom', message: problem });
    });
}

/** Tuning of the FUSE session; every default is what a mount gets unless told otherwise. */
export const fuseTuningSchema = z.object({
  /**
   * Reads of /dev/fuse kept outstanding on the libuv threadpool, for a device without a reader thread of its own;
   * the real /dev/fuse is read by one worker thread instead (src/fs/fuse/device-reader.ts says why). Default 4.
   */
  deviceReaders: z.number().int().min(1).max(64).default(4),
  /**
   * UV_THREADPOOL_SIZE for the mount process: the device readers plus the threads file I/O, DNS
   * lookups and crypto need (libuv's own default of 4 would all be taken by the readers). Default 20.
   */
  threadpoolSize: z.number().int().min(2).max(1024).default(20),
  /** Async (readahead) requests the kernel keeps in flight per mount; the kernel's own default is 12. Default 64. */
  maxBackground: z.number().int().min(1).max(0xffff).default(64),
  /**
   * Kernel readahead in bytes: the cap sent in FUSE_INIT, and the mount's read_ahead_kb, raised to it after
   * mounting (the kernel starts every FUSE mount at 128 KiB; raising needs root and a writable /sys). Default 1 MiB.
   */
  maxReadahead: z.number().int().min(0).default(1024 * 1024),
  /** How long, after umount, to wait for the kernel to close the connection before exiting anyway (ms). Default 10 s. */
  unmountTimeoutMs: z.number().int().min(0).default(10_000),
});

/**
 * How long a filesystem operation may keep its caller waiting, whatever the timeouts and retries underneath: past it
 * the caller gets EIO (and a signal to the caller ends its wait with EINTR at any time). An operation answered at its
 * deadline may still take effect: a store that was only slow may apply a change after all, as over NFS.
 */
export const operationDeadlinesSchema = z.object({
  /**
   * LOOKUP, GETATTR, READDIR, OPENDIR, OPEN, CREATE, MKDIR, MKNOD, UNLINK, RMDIR, ACCESS, STATFS: the whole operation
   * (a lookup is a listing or a HEAD and a one-key LIST; a few round trips, retried). Default 30 s.
   */
  metadataMs: z.number().int().min(100).default(30_000),
  /** READ: the whole read, its block fetches and their retries included. Default 60 s. */
  readMs: z.number().int().min(100).default(60_000),
  /**
   * WRITE, FLUSH (close), FSYNC, SETATTR (truncate, utimes) and RENAME: the time without progress, since their work
   * grows with the data (a close uploads what is left of a file, a directory rename copies every object): the deadline
   * starts over whenever the store acknowledges a part, an object or a copy. Default 60 s.
   */
  writeMs: z.number().int().min(100).default(60_000),
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
    /** Mount with `ro`: the kernel refuses writes, and the filesystem answers EROFS to any it sees. Default false. */
    readOnly: z.boolean().default(false),
    /**
     * Owner (uid) shown for every file and directory: S3 stores no owner. Default 0 (root). Pods run
     * as arbitrary uids and one node mount serves them all, so access comes from the modes below, as on
     * an emptyDir; set this to the pods' runAsUser when they must chmod, chown or set explicit times
     * (tar, cp -p), which the kernel allows only to the owner.
     */
    uid: z.number().int().min(0).max(0xfffffffe).default(0),
    /** Group (gid) shown for every file and directory. Default 0; the CSI volume_mount_group belongs here. */
    gid: z.number().int().min(0).max(0xfffffffe).default(0),
    /**
     * Permission bits of every file. Default 0o666: with default_permissions the kernel checks them, and
     * a pod of any uid must be able to write its volume (rclone's default too). 0o644 or 0o444 restrict.
     */
    fileMode: modeSchema('file-mode').default(0o666),
    /** Permission bits of every directory. Default 0o777: any uid may create, rename and delete in it, like an emptyDir. */
    dirMode: modeSchema('dir-mode').default(0o777),
    /**
     * The volume's state directory: what the mount keeps across its own restarts (now `uploads.json`, the multipart
     * uploads in flight, which the next mount aborts if this one dies). One mount per directory. Default (the CLI):
     * defaultStateDir(source, mountpoint); the CSI node plugin passes a per-volume folder of its own stateDir. Unset:
     * nothing is kept (uploads a killed mount leaves are only cleaned up by a bucket lifecycle rule).
     */
    stateDir: z.string().min(1).transform((value) => path.resolve(value)).optional(),
    /** Objects copied (then deleted) at once when a directory is renamed. Default 16. */
    renameConcurrency: z.number().int().min(1).max(256).default(16),
    /** Log level of the JSON log on stderr. Default info. */
    logLevel: z.enum(LOG_LEVELS).default('info'),
    /** An inherited fd (from GRANARY_READY_FD) to write `ready\n` to once the mount is live; none by default. */
    readyFd: z.number().int().min(3).optional(),
    /** How long attributes and names are cached, by granary and by the kernel (ms). Default 1 s. */
    attrTimeoutMs: z.number().int().min(0).default(1000),
    /** Keys asked per LIST page when reading a directory. Default 1000 (S3's maximum). */
    listPageSize: z.number().int().min(1).max(1000).default(1000),
    /**
     * LIST pages a cold lookup may take to list its parent directory whole. The listing (kept for
     * attrTimeoutMs) then answers the lookups of every name it holds: a file costs one LIST per directory
     * plus its GET, instead of a HEAD and a LIST per name (a name it lacks: see negativeLookupMs). A
     * directory with more entries is "big": its lookups ask the store name by name. 0 turns it off. Default
     * 2 (2,000 entries with listPageSize 1000): two pages cost less than the HEAD + LIST of two names.
     */
    lookupListPages: z.number().int().min(0).max(100).default(2),
    /**
     * How long after its LIST a complete directory listing may answer ENOENT for a name it lacks, without
     * a request (capped by attrTimeoutMs, when the listing expires). Faster misses (build tools, `$PATH`
     * searches, create-if-absent) at the price of not seeing, for that long, an object another client has
     * just put. Default 0: a name not in the listing is asked of the store (HEAD + LIST), so objects put
     * with the SDK or another mount show at once, as before listings answered lookups.
     */
    negativeLookupMs: z.number().int().min(0).default(0),
    /**
     * Subdirectories whose listings a directory read fetches ahead (one LIST page each, 4 at a time, in name
     * order), so that a walk (`ls -R`, `find`, a dataset loader's os.walk) finds the next directories listed.
     * A directory read takes such a listing only if its LIST started at most attrTimeoutMs before (else it
     * lists afresh), the bound attributes already have. Default 16; 0 turns it off.
     */
    prefetchListings: z.number().int().min(0).max(1000).default(16),
    /** Filesystem subtype: the mount shows as type `fuse.<subtype>`. Default "granary". */
    subtype: z.string().regex(/^[a-z0-9_-]+$/).default('granary'),
    fuse: fuseTuningSchema.default(fuseTuningSchema.parse({})),
    /** How long operations may wait (src/config/mount.ts operationDeadlinesSchema): 30 s metadata, 60 s read, 60 s without progress for writes. */
    deadlines: operationDeadlinesSchema.default(operationDeadlinesSchema.parse({})),
    /** The read path: block size, block cache, readahead, fetch retries (defaults in src/config/read-path.ts). */
    read: readPathSchema.default(readPathSchema.parse({})),
    /** The write path: part sizes, memory budget, staging directory (defaults in src/config/write-path.ts). */
    write: writePathSchema.default(writePathSchema.parse({})),
    /** The cluster cache blocks are read through (src/config/cache.ts); none by default: blocks come from the object store. */
    cache: cacheClientSchema.default(cacheClientSchema.parse({})),
  })
  .refine((config) => config.cache.peers.length === 0 && !config.cache.kubernetesService || config.cache.blockSize === config.read.blockSizeBytes, {
    message: 'the read block size must equal the cache block size, or no block would be cached',
    path: ['cache', 'blockSize'],
  })
  .refine((config) => config.fuse.threadpoolSize >= config.fuse.deviceReaders + 4, {
    message: 'fuse.threadpoolSize must exceed fuse.deviceReaders by at least 4, or the readers starve file I/O',
    path: ['fuse', 'threadpoolSize'],
  });

/** A validated mount configuration. */
export type MountConfig = z.infer<typeof mountConfigSchema>;

/** What a caller may pass; defaults fill the rest. */
export type MountConfigInput = z.input<typeof mountConfigSchema>;

/** Validates `input` into a MountConfig; throws one readable error listing every problem ("invalid mount configuration: …"). */
export const parseMountConfig: ConfigParser<MountConfigInput, MountConfig> = parseConfig(mountConfigSchema, 'mount');

/**
 * The state directory a mount gets unless told otherwise: `${XDG_STATE_HOME:-$HOME/.local/state}/granary/mounts/<id>`,
 * where <id> is 16 hex digits of sha256(source + "\0" + absolute mountpoint), so two mounts never share one (a
 * mountpoint holds one mount at a time) and mounting the same source at the same place again finds its predecessor's.
 */
export function defaultStateDir(source: string, mountpoint: string, env: NodeJS.ProcessEnv = process.env): string {
  // The XDG spec ignores a relative XDG_STATE_HOME.
  const xdg = env.XDG_STATE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(env.HOME || os.homedir(), '.local', 'state');
  const id = createHash('sha256').update(`${source.trim()}\0${path.resolve(mountpoint)}`).digest('hex').slice(0, 16);
  return path.join(base, 'granary', 'mounts', id);
}

/** Reads the readiness fd from the environment (GRANARY_READY_FD), or undefined when unset. */
export function readyFdFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const value = env[READY_FD_ENV];
  if (value === undefined || value === '') return undefined;
  const fd = Number(value);
  if (!Number.isInteger(fd) || fd < 3) throw new Error(`${READY_FD_ENV}="${value}" is not an inherited file descriptor number (3 or more)`);
  return fd;
}
