import { execFile } from 'node:child_process';

/** What a finished command printed. */
export interface CommandOutput {
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of one command: its input, working directory, environment and the ceiling on its run time. */
export interface CommandOptions {
  readonly input?: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Default 10 minutes: installs and builds are slow on a busy 2-core machine. */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;

/** Runs a command to its end; rejects with its stderr when it exits non-zero. */
export function run(command: string, args: readonly string[], options: CommandOptions = {}): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env, timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, maxBuffer: 256 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`${command} ${args.join(' ')} failed: ${error.message.split('\n')[0]}\n${stderr.trim()}`, { cause: error }));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs a command and resolves true when it exits 0, false otherwise (for probes and best-effort cleanup). */
export async function succeeds(command: string, args: readonly string[]): Promise<boolean> {
  try {
    await run(command, args, { timeoutMs: 60_000 });
    return true;
  } catch {
    return false;
  }
}
