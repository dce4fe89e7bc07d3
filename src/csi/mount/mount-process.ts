import { spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { MOUNT_PROCESS_CONFIG_DEFAULTS } from '../../config/csi';
import type { Logger } from '../../log/logger';
import { CsiError } from '../errors';
import { settingsToEnvironment, type StoreSettings } from '../secrets';
import type { Mounter } from './mounter';
import { metricsSocketPath, mountSource, readsThroughCache, volumeHash, type MountRecord, type MountRequest, type MountSupervisor } from './supervisor';

/** Defaults of MountProcessOptions, each the value used when the option is left out. */
export const MOUNT_PROCESS_DEFAULTS = {
  /** The node service's defaults (`granary csi --state-dir`, `--mount-ready-timeout`), documented in config/csi.ts. */
  ...MOUNT_PROCESS_CONFIG_DEFAULTS,
  /** How long a mount process gets after SIGTERM to flush and unmount before SIGKILL. */
  stopGraceMs: 10_000,
  /** Lines of the mount log quoted in a failed stage's error message. */
  logTailLines: 20,
  /** Characters of those lines kept (the end: the process's last words): kubelet events and gRPC messages stay readable. */
  logTailChars: 2000,
  /** A mount log bigger than this is moved to `<hash>.log.1` when the volume is staged again. */
  maxLogBytes: 10 * 1024 * 1024,
} as const;

/** The child's file descriptor for the readiness pipe, announced to it in GRANARY_READY_FD. */
export const READY_FD = 3;

/** What the mount process writes on the readiness pipe once the filesystem is mounted and serving. */
const READY_LINE = 'ready';

/** How long to wait for a SIGKILLed process to be reaped (it cannot refuse; this only bounds a stuck D state). */
const KILL_REAP_MS = 5_000;

/** Bytes read from the end of a log to find its last lines. */
const LOG_TAIL_BYTES = 16 * 1024;

/**
 * Plugin environment variables a mount process inherits besides AWS_* and GRANARY_* (no secrets, only plumbing).
 * The Kubernetes ones let a mount given --cache-kubernetes-service reach the API server and find its namespace.
 */
const INHERITED_VARIABLES = [
  'PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY',
  'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', 'KUBECONFIG', 'POD_NAMESPACE',
];

/** AWS variables that pick a credential source: dropped when the volume's secrets carry credentials, so sources never mix. */
const AWS_CREDENTIAL_VARIABLES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN'];

/** A running mount process as the supervisor knows it. */
export interface MountProcessRecord extends MountRecord {
  pid: number;
  /** The per-volume log file the process writes to. */
  logPath: string;
  /** The unix socket the process serves its metrics on (a mount that reads through the cluster cache), else undefined. */
  metricsSocket?: string;
}

/** How MountProcesses starts children; every field has a documented default. */
export interface MountProcessOptions {
  /** Used to confirm the staging path is live after `ready`, and to clean a failed mount up. */
  mounter: Mounter;
  /** The `granary` CLI script run by node; default: the running script (process.argv[1]). */
  cliScript?: string;
  /** The node executable; default process.execPath. */
  nodeExecutable?: string;
  /** See MOUNT_PROCESS_DEFAULTS.stateDir. */
  stateDir?: string;
  /** See MOUNT_PROCESS_DEFAULTS.readyTimeoutMs. */
  readyTimeoutMs?: number;
  /** See MOUNT_PROCESS_DEFAULTS.stopGraceMs. */
  stopGraceMs?: number;
  /** See MOUNT_PROCESS_DEFAULTS.logTailLines. */
  logTailLines?: number;
  /** See MOUNT_PROCESS_DEFAULTS.logTailChars. */
  logTailChars?: number;
  /** See MOUNT_PROCESS_DEFAULTS.maxLogBytes. */
  maxLogBytes?: number;
  /** The environment a child's is filtered from; default process.env. */
  baseEnvironment?: NodeJS.ProcessEnv;
  /** child_process.spawn, exposed for testing. */
  spawn?: typeof spawnProcess;
}

/** The environment of a mount process: plumbing from the plugin, the volume's store settings, and the readiness fd. */
export function mountEnvironment(base: NodeJS.ProcessEnv, settings: StoreSettings): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined) continue;
    if (INHERITED_VARIABLES.includes(name) || name.startsWith('AWS_') || name.startsWith('GRANARY_')) env[name] = value;
  }
  if (settings.credentials) {
    for (const name of AWS_CREDENTIAL_VARIABLES) delete env[name];
  }
  return { ...env, ...settingsToEnvironment(settings), GRANARY_READY_FD: String(READY_FD) };
}

/** The last `lines` lines of a file, at most `maxChars` of them from the end ('' when it cannot be read). */
export function readLogTail(file: string, lines: number, maxChars = Number.POSITIVE_INFINITY): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const length = Math.min(size, LOG_TAIL_BYTES);
      const buffer = Buffer.alloc(length);
      fs.readSync(fd, buffer, 0, length, size - length);
      const tail = buffer.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n');
      return tail.length > maxChars ? `...${tail.slice(-maxChars)}` : tail;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

interface Running {
  record: MountProcessRecord;
  child: ChildProcess;
  exited: Promise<void>;
}

type ReadyOutcome = { kind: 'ready' } | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null } | { kind: 'timeout' } | { kind: 'error'; error: Error };

/** Supervises `granary mount` children: one per staged volume, stderr to a per-volume log, readiness over a pipe. */
export class MountProcesses implements MountSupervisor {
  private readonly running = new Map<string, Running>();
  private readonly mounter: Mounter;
  private readonly cliScript: string;
  private readonly nodeExecutable: string;
  private readonly stateDir: string;
  private readonly readyTimeoutMs: number;
  private readonly stopGraceMs: number;
  private readonly logTailLines: number;
  private readonly logTailChars: number;
  private readonly maxLogBytes: number;
  private readonly baseEnvironment: NodeJS.ProcessEnv;
  private readonly spawn: typeof spawnProcess;

  constructor(options: MountProcessOptions) {
    this.mounter = options.mounter;
    this.cliScript = options.cliScript ?? process.argv[1] ?? '';
    this.nodeExecutable = options.nodeExecutable ?? process.execPath;
    this.stateDir = options.stateDir ?? MOUNT_PROCESS_DEFAULTS.stateDir;
    this.readyTimeoutMs = options.readyTimeoutMs ?? MOUNT_PROCESS_DEFAULTS.readyTimeoutMs;
    this.stopGraceMs = options.stopGraceMs ?? MOUNT_PROCESS_DEFAULTS.stopGraceMs;
    this.logTailLines = options.logTailLines ?? MOUNT_PROCESS_DEFAULTS.logTailLines;
    this.logTailChars = options.logTailChars ?? MOUNT_PROCESS_DEFAULTS.logTailChars;
    this.maxLogBytes = options.maxLogBytes ?? MOUNT_PROCESS_DEFAULTS.maxLogBytes;
    this.baseEnvironment = options.baseEnvironment ?? process.env;
    this.spawn = options.spawn ?? spawnProcess;
  }

  /** The log file of a volume's mount process: `<stateDir>/<volume-hash>.log`. */
  logPath(volumeId: string): string {
    return path.join(this.stateDir, `${volumeHash(volumeId)}.log`);
  }

  /**
   * The state directory of a volume's mount processes, `<stateDir>/<volume-hash>/` (passed as --state-dir): it
   * outlives each process, so a mount restarted after a crash aborts the multipart uploads its predecessor left.
   */
  volumeStateDir(volumeId: string): string {
    return path.join(this.stateDir, volumeHash(volumeId));
  }

  /** The volume's running mount process, if any. */
  describe(volumeId: string): MountProcessRecord | undefined {
    return this.running.get(volumeId)?.record;
  }

  /** Every running mount process. */
  list(): MountProcessRecord[] {
    return [...this.running.values()].map((running) => running.record);
  }

  /** The unix socket a volume's mount process serves its metrics on (see supervisor.ts metricsSocketPath). */
  metricsSocketPath(volumeId: string): string {
    return metricsSocketPath(this.stateDir, volumeId);
  }

  /** Nothing to adopt: mount processes are children of the node plugin's container and end with it. */
  async adopt(): Promise<void> {
    // A restarted plugin finds their mounts dead; NodeStage and NodeUnstage clean those up as corrupt.
  }

  /**
   * Starts the mount process of a volume:
   * 1. open the volume's log (rotated when too big) and note the start in it;
   * 2. spawn `node CLI mount s3://bucket/prefix STAGING [--read-only] --state-dir DIR FLAGS...`, credentials in env, stdout+stderr to the log, a pipe on fd 3;
   * 3. wait for `ready` on the pipe, the child's exit, or the ready timeout;
   * 4. confirm the staging path is a live mount.
   * If 3 or 4 fails: stop the child, unmount the staging path, and throw with the log's last lines.
   */
  async start(request: MountRequest, log: Logger): Promise<MountProcessRecord> {
    const { volumeId, stagingTargetPath, readOnly, flags } = request;
    const existing = this.running.get(volumeId);
    if (existing) {
      throw new CsiError('FAILED_PRECONDITION', `volume ${volumeId} already has a mount process (pid ${existing.record.pid}) for ${existing.record.stagingTargetPath}; unstage it first`);
    }
    if (!this.cliScript || !fs.existsSync(this.cliScript)) {
      throw new CsiError('INTERNAL', `the granary CLI script ${JSON.stringify(this.cliScript)} does not exist; the node plugin cannot start mount processes (check the image, or build with npm run build)`);
    }

    // 1. The log: the child writes straight into it, so it keeps logging even if this plugin restarts.
    const logPath = this.logPath(volumeId);
    fs.mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    // The mount's counters are those of its cluster cache client: a mount without the cache has none to serve.
    const metricsSocket = readsThroughCache(flags) ? this.metricsSocketPath(volumeId) : undefined;
    this.rotateLog(logPath);
    const logFd = fs.openSync(logPath, 'a', 0o600);
    let child: ChildProcess;
    try {
      fs.writeSync(logFd, `${JSON.stringify({ time: new Date().toISOString(), msg: 'node plugin: starting granary mount', volumeId, stagingTargetPath, readOnly, flags })}\n`);
      // 2. Spawn: argv holds only the source, the path and flags; settings travel in the environment.
      const args = [this.cliScript, 'mount', mountSource(request.location), stagingTargetPath, ...(readOnly ? ['--read-only'] : []), '--state-dir', this.volumeStateDir(volumeId), ...flags, ...(metricsSocket ? ['--cache-metrics-socket', metricsSocket] : [])];
      child = this.spawn(this.nodeExecutable, args, {
        env: mountEnvironment(this.baseEnvironment, request.settings),
        stdio: ['ignore', logFd, logFd, 'pipe'],
      });
    } finally {
      fs.closeSync(logFd);
    }

    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const record: MountProcessRecord = { volumeId, stagingTargetPath, readOnly, pid: child.pid ?? -1, logPath, logHint: `the mount log at ${logPath}`, ...(metricsSocket && { metricsSocket }) };
    log.info({ pid: record.pid, stagingTargetPath, readOnly, logPath }, 'started granary mount');

    // 3. Readiness.
    const outcome = await this.waitReady(child);
    let failure: string | undefined;
    let code: 'INTERNAL' | 'DEADLINE_EXCEEDED' = 'INTERNAL';
    if (outcome.kind === 'exited') failure = `exited (${outcome.signal ? `signal ${outcome.signal}` : `code ${outcome.code}`}) before it was ready`;
    else if (outcome.kind === 'error') failure = `could not be started: ${outcome.error.message}`;
    else if (outcome.kind === 'timeout') {
      failure = `was not ready within ${this.readyTimeoutMs} ms`;
      code = 'DEADLINE_EXCEEDED';
    } else {
      // 4. `ready` is the child's word; the mount table is the proof.
      const state = await this.mounter.isMountPoint(stagingTargetPath).catch((error: Error) => `unknown (${error.message})`);
      if (state !== 'mounted') failure = `said ready but ${stagingTargetPath} is ${state}`;
    }

    if (failure !== undefined) {
      await this.stopChild(child, exited);
      await this.mounter.unmount(stagingTargetPath).catch((error: unknown) => log.warn({ err: error }, 'could not unmount after a failed mount'));
      const tail = readLogTail(logPath, this.logTailLines, this.logTailChars);
      throw new CsiError(code, `granary mount of volume ${volumeId} at ${stagingTargetPath} ${failure}${tail ? `; last lines of its log:\n${tail}\n` : '; '}see the mount log at ${logPath}`);
    }

    const running: Running = { record, child, exited };
    this.running.set(volumeId, running);
    log.info({ pid: record.pid, stagingTargetPath, readOnly, logPath }, 'granary mount is live: volume staged');
    // A process that dies later leaves a dead FUSE mount; NodeStage and NodeUnstage see it as corrupt and clean it up.
    void exited.then(() => {
      if (this.running.get(volumeId) === running) this.running.delete(volumeId);
      if (child.exitCode !== 0 || child.signalCode !== null) {
        log.warn({ pid: record.pid, code: child.exitCode, signal: child.signalCode, logPath }, 'granary mount exited');
      }
    });
    return record;
  }

  /** Sends SIGTERM, waits for the grace period, then SIGKILL. */
  async stop(volumeId: string, log: Logger): Promise<boolean> {
    const running = this.running.get(volumeId);
    if (!running) return false;
    log.info({ pid: running.record.pid }, 'stopping granary mount');
    await this.stopChild(running.child, running.exited);
    if (this.running.get(volumeId) === running) this.running.delete(volumeId);
    return true;
  }

  /** Stops every mount process (plugin shutdown in tests; in a pod they die with the container). */
  async stopAll(log: Logger): Promise<void> {
    await Promise.all([...this.running.keys()].map((volumeId) => this.stop(volumeId, log)));
  }

  private waitReady(child: ChildProcess): Promise<ReadyOutcome> {
    return new Promise((resolve) => {
      const pipe = child.stdio[READY_FD] as Readable | null | undefined;
      let buffered = '';
      const finish = (outcome: ReadyOutcome) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        child.off('error', onError);
        // Only one line is ever expected: closing our end keeps the pipe from holding the event loop.
        pipe?.destroy();
        resolve(outcome);
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => finish({ kind: 'exited', code, signal });
      const onError = (error: Error) => finish({ kind: 'error', error });
      const timer = setTimeout(() => finish({ kind: 'timeout' }), this.readyTimeoutMs);
      child.once('exit', onExit);
      child.once('error', onError);
      pipe?.on('error', () => undefined);
      pipe?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        if (buffered.split('\n').some((line, i, all) => line.trim() === READY_LINE && i < all.length - 1)) finish({ kind: 'ready' });
      });
    });
  }

  private async stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    child.kill('SIGTERM');
    if (await settlesWithin(exited, this.stopGraceMs)) return;
    child.kill('SIGKILL');
    await settlesWithin(exited, KILL_REAP_MS);
  }

  private rotateLog(logPath: string): void {
    try {
      if (fs.statSync(logPath).size > this.maxLogBytes) fs.renameSync(logPath, `${logPath}.1`);
    } catch {
      // No log yet.
    }
  }
}

async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
