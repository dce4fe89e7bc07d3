#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { version } from '../version';
import { register as registerCache } from './cache';
import { register as registerCsi } from './csi';
import { register as registerMount } from './mount';
import { register as registerWarmup } from './warmup';
import { failureReport } from './failure';
import { HELP_LAYOUT } from './help-layout';
import { applyLogFlags, debugLogging, type LogFlags } from './log-flags';
import { flushLogs } from '../log/logger';

// Subcommands, one file each: `register(program)` adds the command and its flags; the action
// builds a validated config (src/config/) and calls into the role's module.
const subcommands: Array<(program: Command) => void> = [registerMount, registerCsi, registerCache, registerWarmup];

/** Builds the `granary` command line. */
export function buildProgram(): Command {
  const program = new Command('granary')
    .description('S3-backed Kubernetes volumes with a cluster cache pooled from GPU nodes')
    .version(version, '-V, --version')
    .showHelpAfterError()
    .exitOverride()
    .configureHelp(HELP_LAYOUT)
    // Before any action builds its logger: the format it writes in, the level that decides how errors are shown.
    .hook('preAction', (_program, action) => applyLogFlags(action.opts<LogFlags>()));
  for (const register of subcommands) register(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  // The AWS SDK warns, on every command under Node 20, that its releases after January 2027 need Node 22 (granary's
  // image runs 22; README says which versions granary supports). Its own opt-out, read when a client is made, silences
  // that one warning and no other; the mount's serving processes inherit it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode);
    // The log lines written before the failure come before its report, not after it at exit.
    await flushLogs();
    process.stderr.write(failureReport(error, { debug: debugLogging() }));
    process.exit(1);
  }
}

if (require.main === module) void main(process.argv);
