import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { stopProcess } from '../support/process';
import { inCgroup } from './cgroups';

/** A long-running component of the node, its output in its own log file. */
export interface Daemon {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** True once the process has exited. */
  exited(): boolean;
  /** SIGTERM, then SIGKILL after graceMs; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** The last lines of a log, for an error message. */
export function logTail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Starts a daemon inside the harness's cgroup (so an interrupted run's cleanup finds it and all it
 * forked), in its own process group (a Ctrl-C of the test reaches the harness, which stops the
 * daemons in order, not every daemon at once), with stdout and stderr in logFile.
 */
export function startDaemon(cgroup: string, name: string, command: string, args: readonly string[], logFile: string,
  env: NodeJS.ProcessEnv = process.env): Daemon {
  const log = fs.openSync(logFile, 'a');
  const [shell, shellArgs] = inCgroup(cgroup, command, args);
  const child = spawn(shell, shellArgs, { stdio: ['ignore', log, log], detached: true, env });
  fs.closeSync(log);
  child.on('error', () => undefined);
  return {
    name,
    child,
    logFile,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    stop: (graceMs = 10_000) => stopProcess(child, graceMs),
  };
}

/**
 * Polls check until it resolves true; fails with `what` when the deadline passes or when one of the
 * watched daemons exits first (quoting its log), so a boot never waits out a deadline for a corpse.
 */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, watched: readonly Daemon[] = []): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    for (const daemon of watched) {
      if (daemon.exited()) throw new Error(`${daemon.name} exited while waiting for ${what}; its log ends:\n${logTail(daemon.logFile)}`);
    }
    try {
      if (await check()) return;
    } catch (error) {
      lastError = (error as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${lastError ? `: ${lastError}` : ''}` +
        watched.map((daemon) => `\n--- ${daemon.name} log ends:\n${logTail(daemon.logFile, 10)}`).join(''));
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
