// fs-probe (e2e/support/fs-probe.c): one timed filesystem call at a time, driven step by step, built with the
// machine's C compiler once per source version and kept beside the other test tools.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnStepped, type SteppedChild } from '../scenarios/helpers';

const SOURCE = path.join(__dirname, 'fs-probe.c');

/** The calls fs-probe makes (see fs-probe.c for what each prepares). */
export type ProbeOperation = 'lookup' | 'revalidate' | 'getattr' | 'readdir' | 'open' | 'read' | 'write' | 'fsync' | 'close';

/** How one call ended: its errno name (OK on success) and how long it took, as the probe measured it. */
export interface ProbeResult {
  errno: string;
  ms: number;
}

/** The fs-probe binary, compiled with cc (gcc) into the tools directory the first time this source is used. */
export function fsProbeBinary(): string {
  const source = fs.readFileSync(SOURCE);
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = path.join(process.env.GRANARY_TOOLS_DIR ?? path.join(os.homedir(), '.cache', 'granary', 'tools'), `fs-probe-${digest}`);
  const binary = path.join(dir, 'fs-probe');
  if (fs.existsSync(binary)) return binary;
  fs.mkdirSync(dir, { recursive: true });
  const temporary = `${binary}.${process.pid}`;
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', temporary, SOURCE], { stdio: 'pipe' });
  } catch (error) {
    const output = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`cannot build the fs-probe test tool with cc (install gcc: apt-get install gcc): ${(error as Error).message}\n${output}`, { cause: error });
  }
  fs.renameSync(temporary, binary);
  return binary;
}

/** A probe that has prepared its call and waits for go(). */
export interface Probe {
  readonly operation: ProbeOperation;
  readonly pid: number;
  /** Runs the call; resolves once it is under way ("started"). */
  go(): Promise<void>;
  /** Resolves with the call's outcome once it returned. */
  result(): Promise<ProbeResult>;
  /** Lets the probe exit (its descriptors close), and waits for it. */
  finish(): Promise<void>;
}

/** Probes started and not finished, by pid: killProbes() ends them after a failed test. */
const running = new Set<number>();

/** SIGKILLs every probe still running (for afterEach/afterAll: a failed test leaves probes waiting for their next step). */
export function killProbes(): void {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  running.clear();
}

/** Starts fs-probe OPERATION PATH and resolves once it is ready (what the call needs is prepared). */
export async function startProbe(operation: ProbeOperation, file: string): Promise<Probe> {
  const child: SteppedChild = spawnStepped(fsProbeBinary(), [operation, file]);
  running.add(child.pid);
  void child.finished.then(() => running.delete(child.pid));
  const expect = async (wanted: string) => {
    const line = await child.nextLine();
    if (!line.startsWith(wanted)) throw new Error(`fs-probe ${operation} ${file}: expected "${wanted}", got "${line}"`);
    return line;
  };
  await expect('ready');
  let outcome: Promise<ProbeResult> | undefined;
  return {
    operation,
    pid: child.pid,
    go: async () => {
      child.proceed();
      await expect('started');
      outcome = expect('done').then((line) => {
        const [, errno = '?', ms = 'NaN'] = line.split(' ');
        return { errno, ms: Number(ms) };
      });
      outcome.catch(() => undefined);
    },
    result: () => {
      if (!outcome) throw new Error('fs-probe: result() before go()');
      return outcome;
    },
    finish: async () => {
      child.proceed();
      await child.finished;
    },
  };
}

/** The kernel function a process sleeps in (/proc/PID/wchan): request_wait_answer while it waits on a FUSE reply. */
export function waitChannel(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/wchan`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** The kernel function a process blocked in a FUSE request sleeps in. */
export const FUSE_WAIT = 'request_wait_answer';
