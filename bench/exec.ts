// Running outside commands (ls, umount, rclone, sync) and waiting for conditions.
import { execFile } from 'node:child_process';

/** What a finished command printed and how it exited. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Largest output a command may print before it is cut off (ls -lR of a big tree fits). */
export const MAX_COMMAND_OUTPUT_BYTES = 256 * 1024 * 1024;

/** Runs a command to completion without a shell; never rejects (a missing program reads as code 127). */
export function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(command, args, { maxBuffer: MAX_COMMAND_OUTPUT_BYTES, env: options.env ?? process.env, timeout: options.timeoutMs ?? 0 }, (error, stdout, stderr) => {
      let code = 0;
      if (error) code = typeof error.code === 'number' ? error.code : error.code === 'ENOENT' ? 127 : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (error && code !== 0 ? error.message : '') });
    });
  });
}

/** Interval between two checks of waitUntil. */
export const POLL_INTERVAL_MS = 20;

/** Resolves once `check` returns true; rejects with `describe()` after `timeoutMs`, or with what `check` threw. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(describe());
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/** The message of anything thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
