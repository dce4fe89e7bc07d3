// `granary mount --background`: starts the mount as a detached process of its own, its log in a file, and
// returns once the mount is live (or with the mount's own error when it could not start), so that a shell
// script or a person at a terminal can use the mountpoint on the next line and unmount it with `umount`.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The detached mount's file descriptor for the readiness pipe (stdin, stdout and stderr come first). */
const BACKGROUND_READY_FD = 3;

/** How much of the end of the log a failure shows. */
const LOG_TAIL_BYTES = 64 * 1024;

/** What startInBackground needs: the foreground command line to run, and where its log goes. */
export interface BackgroundMountOptions {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** The environment variable that names the readiness fd to the child. */
  readyFdEnv: string;
  /** File the mount logs to (appended), in the volume's state directory. */
  logFile: string;
}

/** The detached mount once it is live. */
export interface BackgroundMount {
  pid: number;
  logFile: string;
}

/** Starts the mount detached and resolves once it is live; rejects with the mount's own error line if it ends first. */
export function startInBackground(options: BackgroundMountOptions): Promise<BackgroundMount> {
  fs.mkdirSync(path.dirname(options.logFile), { recursive: true });
  const logFd = fs.openSync(options.logFile, 'a', 0o600);
  const logStart = fs.fstatSync(logFd).size;
  const child = spawn(options.command, options.args, {
    detached: true,
    stdio: ['ignore', logFd, logFd, 'pipe'],
    env: { ...options.env, [options.readyFdEnv]: String(BACKGROUND_READY_FD) },
  });
  fs.closeSync(logFd);
  const readiness = child.stdio[BACKGROUND_READY_FD] as NodeJS.ReadableStream;
  return new Promise((resolve, reject) => {
    let said = '';
    const ready = () => {
      child.removeAllListeners('exit');
      readiness.removeAllListeners();
      (readiness as unknown as { destroy(): void }).destroy();
      child.unref();
      resolve({ pid: child.pid as number, logFile: options.logFile });
    };
    readiness.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes('ready\n')) ready();
    });
    readiness.on('error', () => undefined);
    child.once('error', (error) => reject(new Error(`could not start the mount: ${error.message}`)));
    child.once('exit', (code, signal) => {
      const why = failureLine(options.logFile, logStart);
      const ended = signal !== null ? `was killed by ${signal}` : `exited ${code}`;
      reject(new Error(`${why ?? `the mount ${ended} before it was live`} (its log: ${options.logFile})`));
    });
  });
}

/** The mount's own error: its last `granary: ` line, else the last error-level log message, written since `from`. */
export function failureLine(logFile: string, from: number): string | undefined {
  let text: string;
  try {
    const size = fs.statSync(logFile).size;
    const start = Math.max(from, size - LOG_TAIL_BYTES);
    const fd = fs.openSync(logFile, 'r');
    try {
      const buffer = Buffer.alloc(size - start);
      fs.readSync(fd, buffer, 0, buffer.length, start);
      text = buffer.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const human = lines.filter((line) => line.startsWith('granary: ')).pop();
  if (human !== undefined) return human.slice('granary: '.length);
  for (const line of lines.reverse()) {
    const entry = parseLogLine(line);
    if (entry !== undefined && isErrorLevel(entry.level) && typeof entry.msg === 'string') {
      const detail = (entry.err as { message?: unknown } | undefined)?.message;
      return typeof detail === 'string' ? `${entry.msg}: ${detail}` : entry.msg;
    }
  }
  return undefined;
}

function parseLogLine(line: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Error or fatal, whether the level is pino's number (50, 60) or its name. */
function isErrorLevel(level: unknown): boolean {
  return (typeof level === 'number' && level >= 50) || level === 'error' || level === 'fatal';
}
