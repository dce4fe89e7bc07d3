// `granary mount SOURCE MOUNTPOINT`: parse flags, build the MountConfig, run the mount process.
import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultStateDir, LOG_LEVELS, parseMountConfig, readyFdFromEnv, READY_FD_ENV } from '../config/mount';
import * as fs from 'node:fs';
import { holdMount, TAKEOVER_SINCE_ENV } from '../roles/mount-holder';
import { startInBackground } from '../roles/mount-background';
import * as path from 'node:path';
import { createLogger, type Logger } from '../log/logger';
import { parseMode, type ModeOption } from '../config/permission-mode';
import { parseByteSize } from '../config/size';
import type { OptionFlags } from '../config/parse';
import { addCacheClientOptions, cacheClientFlags, cacheClientInput, flagParser, wholeNumber, type CacheClientFlags } from './cache-flags';
import { logFormatOption } from './log-flags';

function flush(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}

/** The flags of `granary mount` as commander parses them. */
interface MountFlags extends CacheClientFlags {
  ramCacheBytes?: number;
  readOnly: boolean;
  logLevel: (typeof LOG_LEVELS)[number];
  uid?: number;
  gid?: number;
  fileMode?: number;
  dirMode?: number;
  stateDir?: string;
  metadataDeadline?: number;
  fuseFd?: number;
  takeover?: boolean;
  background: boolean;
  readDeadline?: number;
  writeDeadline?: number;
}

function parseInteger(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(value);
}

/** The commander parser of a mode flag: octal permission bits, never setuid, setgid or sticky. */
function parseOctal(option: ModeOption): (value: string) => number {
  return (value) => {
    const parsed = parseMode(option, value);
    if ('problem' in parsed) throw new InvalidArgumentError(parsed.problem);
    return parsed.mode;
  };
}

/** The real path of `mountpoint` when it can be resolved (what mountinfo will show), else the path as given. */
function realMountpoint(mountpoint: string): string {
  try {
    return fs.realpathSync(mountpoint);
  } catch {
    return mountpoint;
  }
}

/** Exits at once when stdin (the mount holder's pipe) closes: the holder is gone. */
function exitWithParent(logger: Logger): void {
  process.stdin.on('error', () => undefined);
  process.stdin.on('close', () => {
    logger.error('the mount holder is gone: this serving process ends with it');
    // Not process.exit(): at exit libuv joins its threadpool, whose threads block in read() on /dev/fuse for as long as
    // the connection lives, and this process holds it open, so exit() would wait forever. A SIGKILL ends every thread.
    void flush(logger).then(() => process.kill(process.pid, 'SIGKILL'));
  });
  process.stdin.resume();
}

/** The flag (or argument) of each option of `granary mount`, for the configuration's messages. */
const MOUNT_FLAGS: OptionFlags = {
  source: 'SOURCE',
  mountpoint: 'MOUNTPOINT',
  readOnly: '--read-only',
  logLevel: '--log-level',
  stateDir: '--state-dir',
  uid: '--uid',
  gid: '--gid',
  fileMode: '--file-mode',
  dirMode: '--dir-mode',
  'deadlines.metadataMs': '--metadata-deadline',
  'deadlines.readMs': '--read-deadline',
  'deadlines.writeMs': '--write-deadline',
  'read.blockSizeBytes': '--cache-block-size',
  'read.cacheBytes': '--ram-cache-bytes',
  ...cacheClientFlags(),
};

/** Adds `granary mount` to the program. */
export function register(program: Command): void {
  const command = program
    .command('mount')
    .description(
      'Mount SOURCE (s3://BUCKET/PREFIX, endpoint and credentials from AWS_* environment variables, or a local folder) ' +
        `at MOUNTPOINT and serve it until SIGTERM/SIGINT or umount (with --background, detached). Logs on stderr (--log-format). When ${READY_FD_ENV} names an inherited fd, ` +
        'writes "ready\\n" to it once the mount is live.',
    )
    .argument('<source>', 's3://BUCKET/PREFIX or a local folder')
    .argument('<mountpoint>', 'an existing directory')
    .option('--read-only', 'mount read-only (ro)', false)
    .option('--background', 'return once the mount is live, leaving it running detached with its log in the state directory (mount.log); stop it with umount MOUNTPOINT', false)
    .option('--uid <uid>', 'owner uid shown for every file (default: 0)', parseInteger)
    .option('--gid <gid>', 'group gid shown for every file (default: 0)', parseInteger)
    .option('--file-mode <mode>', 'permission bits of files, octal, no setuid/setgid/sticky (default: 0666)', parseOctal('file-mode'))
    .option('--dir-mode <mode>', 'permission bits of directories, octal, no setuid/setgid/sticky (default: 0777)', parseOctal('dir-mode'))
    .option('--state-dir <dir>', 'the volume\'s state directory, one mount per directory: the session journal, the multipart uploads in flight (a mount started after this one died aborts them), the --background log (default: ${XDG_STATE_HOME:-$HOME/.local/state}/granary/mounts/<16 hex of sha256(source, mountpoint)>)')
    .option('--ram-cache-bytes <size>', "bytes of blocks the mount keeps in its own RAM, shared by its readers: with the cluster cache, the node's copy of hot blocks (default: 256MiB)", flagParser(parseByteSize))
    .option('--metadata-deadline <ms>', 'longest a lookup, stat, listing, open, create, mkdir or unlink may wait before it fails with EIO (default: 30000)', wholeNumber)
    .option('--read-deadline <ms>', 'longest a read may wait, retries included, before it fails with EIO (default: 60000)', wholeNumber)
    .option('--write-deadline <ms>', 'longest a write, close, fsync, truncate or rename may go without the store acknowledging anything before it fails with EIO (default: 60000)', wholeNumber)
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .addOption(logFormatOption())
    // Between the mount holder and the serving processes it starts (see roles/mount-holder.ts), not for people.
    .addOption(new Option('--fuse-fd <fd>', 'serve this inherited /dev/fuse descriptor (the mount holder passes it)').argParser(wholeNumber).hideHelp())
    .addOption(new Option('--takeover', "take over the inherited descriptor's live session, whose serving process died").hideHelp());
  addCacheClientOptions(command).action(async (source: string, mountpoint: string, flags: MountFlags) => {
    const config = parseMountConfig({
      source,
      mountpoint,
      readOnly: flags.readOnly,
      logLevel: flags.logLevel,
      readyFd: readyFdFromEnv(),
      stateDir: flags.stateDir ?? defaultStateDir(source, mountpoint),
      ...(flags.uid !== undefined && { uid: flags.uid }),
      ...(flags.gid !== undefined && { gid: flags.gid }),
      ...(flags.fileMode !== undefined && { fileMode: flags.fileMode }),
      ...(flags.dirMode !== undefined && { dirMode: flags.dirMode }),
      cache: cacheClientInput(flags),
      deadlines: {
        ...(flags.metadataDeadline !== undefined && { metadataMs: flags.metadataDeadline }),
        ...(flags.readDeadline !== undefined && { readMs: flags.readDeadline }),
        ...(flags.writeDeadline !== undefined && { writeMs: flags.writeDeadline }),
      },
      read: {
        ...(flags.cacheBlockSize !== undefined && { blockSizeBytes: flags.cacheBlockSize }),
        ...(flags.ramCacheBytes !== undefined && { cacheBytes: flags.ramCacheBytes }),
      },
    }, MOUNT_FLAGS);
    if (flags.background) {
      if (config.stateDir === undefined) throw new Error('--background needs a state directory for the log (--state-dir)');
      // The same command line in the foreground, detached; this process only waits for it to be live.
      const started = await startInBackground({
        command: process.execPath,
        args: [...process.execArgv, ...process.argv.slice(1).filter((arg) => arg !== '--background')],
        env: process.env,
        readyFdEnv: READY_FD_ENV,
        logFile: path.join(config.stateDir, 'mount.log'),
      });
      process.stderr.write(`granary: mounted ${source} at ${mountpoint} (pid ${started.pid}, log ${started.logFile}); unmount with: umount ${mountpoint}\n`);
      return;
    }
    // Before anything queues work on libuv's threadpool (the logger's async writes are the first):
    // libuv reads UV_THREADPOOL_SIZE once, when it starts the pool, and each outstanding /dev/fuse
    // read holds one pool thread for as long as the kernel has no request.
    process.env.UV_THREADPOOL_SIZE = String(Math.max(config.fuse.threadpoolSize, Number(process.env.UV_THREADPOOL_SIZE) || 0));
    if (flags.fuseFd === undefined && config.stateDir !== undefined) {
      // This process is the mount holder: it keeps the FUSE connection and runs the processes that serve it.
      const logger = createLogger({ level: config.logLevel, name: 'granary-mount-holder' });
      let code: number;
      try {
        code = await holdMount({
          command: process.execPath,
          args: [...process.execArgv, ...process.argv.slice(1)],
          mountpoint: realMountpoint(config.mountpoint),
          ...(config.readyFd !== undefined && { readyFd: config.readyFd }),
          logger,
        });
      } finally {
        await flush(logger);
      }
      process.exit(code);
    }
    const logger = createLogger({ level: config.logLevel, name: 'granary-mount' });
    // Served for a holder: when it dies (kill -9 of `granary mount`), this process ends too, as a killed mount always did.
    if (flags.fuseFd !== undefined) exitWithParent(logger);
    const since = Number(process.env[TAKEOVER_SINCE_ENV]);
    try {
      // Loaded here, not at the top: the mount holder runs this same command and needs none of the filesystem (see index.ts).
      const { serveMount } = await import('../roles/mount');
      await serveMount(config, {
        logger,
        ...(flags.fuseFd !== undefined && { fuseFd: flags.fuseFd }),
        ...(flags.takeover && { takeover: { since: Number.isFinite(since) ? since : Date.now() } }),
      });
    } finally {
      // The program then prints the error, once (src/cli/failure.ts), and exits non-zero.
      await flush(logger);
    }
    // Threadpool threads may still sit in read(/dev/fuse) after a lazy unmount; do not wait for them.
    process.exit(0);
  });
}
