// What the bench entry points (run.ts, cache.ts) share: flag parsers, the command line for the footer,
// progress on stderr, and the install scripts they run first.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { messageOf } from './exec';
import { parseSize } from './units';

/** The repository root (the bench runs from dist/bench/). */
export const ROOT = path.join(__dirname, '..', '..');

/** Writes one progress line on stderr (the table goes to stdout). */
export const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/** Parses a size flag (4GiB, 512MiB, bytes). */
export const sizeFlag = (text: string): number => {
  try {
    return parseSize(text);
  } catch (error) {
    throw new InvalidArgumentError(messageOf(error));
  }
};

/** Parses a whole-number flag of at least 1. */
export const wholeFlag = (text: string): number => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(`"${text}" is not a whole number of at least 1`);
  return value;
};

/** The command line as typed, for the footer: `base` (e.g. `node dist/bench/run.js`) and the arguments, shell-quoted. */
export function commandLine(base: string): string {
  const args = process.argv.slice(2).map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`)).join(' ');
  return args ? `${base}${base.startsWith('npm') ? ' --' : ''} ${args}` : base;
}

/** Runs an install script of the repository with its output on stderr; returns its exit code. */
export function install(script: string): number {
  return spawnSync('bash', [path.join(ROOT, script)], { stdio: ['ignore', 2, 2] }).status ?? 1;
}

/** Runs a bench entry point: exits with the code `main` resolves to, or 1 with its error on stderr. */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      progress(`bench: ${messageOf(error)}`);
      process.exit(1);
    },
  );
}
