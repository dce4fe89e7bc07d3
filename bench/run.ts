#!/usr/bin/env node
// `npm run bench`: parse flags, install the tools, run every workload on every side, print the table on
// stdout (progress on stderr). No logic here beyond wiring.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import versions from '../e2e/tools/versions.json';
import { Cleanup } from './cleanup';
import { commandLine, install, progress, runMain, sizeFlag, wholeFlag } from './command';
import { messageOf } from './exec';
import { runBench, type SideFailures } from './harness';
import { checkOptions, DEFAULT_OPTIONS, parseList, SIDE_NAMES, WORKLOAD_IDS, type BenchOptions, type SideName } from './options';
import { renderReport } from './report';
import { directSide } from './sides/direct';
import { GRANARY_CLI, granarySide } from './sides/granary';
import { geesefsSide } from './sides/geesefs';
import { juicefsSide } from './sides/juicefs';
import { mountS3Side } from './sides/mount-s3';
import { rcloneSide } from './sides/rclone';
import { s3fsSide } from './sides/s3fs';
import type { Side } from './sides/side';
import { gitRevision, machineSummary } from './system';
import { formatSize } from './units';

function buildProgram(): Command {
  const d = DEFAULT_OPTIONS;
  return new Command('bench')
    .description('Compare granary mount, rclone mount and the S3 SDK on the same bucket of a local real S3 server; prints a markdown table on stdout.')
    .option('--size <size>', 'size of the big file (read, write, random reads)', sizeFlag, d.size)
    .option('--files <n>', 'number of small files', wholeFlag, d.files)
    .option('--file-size <size>', 'size of each small file', sizeFlag, d.fileSize)
    .option('--parallel <n>', 'readers / requests in flight in the parallel rows, and direct\'s ranges in flight', wholeFlag, d.parallel)
    .option('--runs <n>', 'measured runs per cell (the table shows the median)', wholeFlag, d.runs)
    .option('--only <rows>', `rows to run, comma-separated: ${WORKLOAD_IDS.join(',')}`, d.only.join(','))
    .option('--sides <sides>', `sides to run, comma-separated: ${SIDE_NAMES.join(',')}`, d.sides.join(','))
    .option('--random-reads <n>', 'reads in the random-read row', wholeFlag, d.randomReads)
    .option('--timeout <seconds>', 'longest one measured run may take', wholeFlag, d.timeoutMs / 1000)
    .option('--granary-cli <file>', 'the granary CLI to run (default: this checkout\'s dist/src/cli/index.js), e.g. a build of a clean worktree')
    .option('--no-expect-fix', 'let the sides that send `Expect: 100-Continue` reach versitygw directly (they then wait 1 s before every part body)')
    .option('--tls', 'the server speaks https, with a self-signed certificate made for the run that every side verifies', false)
    .option('--keep', 'keep the bucket (the server\'s data dir) at the end', false)
    .option('--json <file>', 'also write every run\'s numbers to this file');
}

async function main(): Promise<number> {
  const program = buildProgram().parse(process.argv);
  const flags = program.opts<{ size: number; files: number; fileSize: number; parallel: number; runs: number; only: string; sides: string; randomReads: number; timeout: number; keep: boolean; expectFix: boolean; tls: boolean; json?: string; granaryCli?: string }>();
  const options: BenchOptions = {
    ...DEFAULT_OPTIONS,
    size: flags.size,
    files: flags.files,
    fileSize: flags.fileSize,
    parallel: flags.parallel,
    runs: flags.runs,
    only: parseList(flags.only, WORKLOAD_IDS, 'row'),
    sides: parseList(flags.sides, SIDE_NAMES, 'side'),
    randomReads: flags.randomReads,
    timeoutMs: flags.timeout * 1000,
    keep: flags.keep,
    expectFix: flags.expectFix,
    tls: flags.tls,
    ...(flags.json && { json: path.resolve(flags.json) }),
  };
  checkOptions(options);
  if (process.getuid?.() !== 0) progress('bench: warning: not root; FUSE mounts and dropping the page cache need root');

  if (install('e2e/tools/install.sh') !== 0) throw new Error("the S3 server could not be installed: fix what e2e/tools/install.sh said above and run 'npm run tools'");
  const unavailable: SideFailures = {};
  const packaged = options.sides.filter((side) => side === 'rclone' || side === 's3fs');
  if (packaged.length > 0 && install('bench/install.sh') !== 0) for (const side of packaged) unavailable[side] = `${side} is not installed: run 'bash bench/install.sh'`;

  const granaryCli = flags.granaryCli ? path.resolve(flags.granaryCli) : GRANARY_CLI;
  const revision = await gitRevision(path.resolve(path.dirname(granaryCli), '..', '..', '..'));
  const all: Record<SideName, Side> = {
    granary: granarySide(revision, granaryCli),
    rclone: rcloneSide(),
    s3fs: s3fsSide(),
    juicefs: juicefsSide(),
    geesefs: geesefsSide(),
    'mount-s3': mountS3Side(),
    direct: directSide(options.parallel, options.rangeBytes),
  };
  const sides = options.sides.map((name) => all[name]!);
  const versionList: Record<string, string> = { node: process.version, versitygw: versions.versitygw.version };
  for (const side of sides) {
    try {
      versionList[side.name] = await side.version();
    } catch (error) {
      unavailable[side.name] ??= messageOf(error);
    }
  }

  const cleanup = new Cleanup();
  cleanup.onSignals();
  try {
    progress(`bench: ${options.only.join(', ')} on ${options.sides.join(', ')}; big file ${formatSize(options.size)}, ${options.files} × ${formatSize(options.fileSize)}, parallel ${options.parallel}, ${options.runs} run(s)`);
    const result = await runBench(options, sides, unavailable, cleanup, progress);
    const report = renderReport(result, options, {
      command: commandLine(process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : 'node dist/bench/run.js'),
      machine: machineSummary(),
      versions: versionList,
      settings: Object.fromEntries(sides.map((side) => [side.name, side.settings])),
    });
    process.stdout.write(`${report}\n`);
    if (options.json) {
      fs.writeFileSync(options.json, `${JSON.stringify({ command: commandLine(process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : 'node dist/bench/run.js'), machine: machineSummary(), versions: versionList, options, ...result }, null, 2)}\n`);
      progress(`bench: raw numbers written to ${options.json}`);
    }
    const wrong = result.raw.filter((run) => !run.outcome.ok && /WRONG/.test(run.outcome.error));
    for (const run of wrong) progress(`bench: FAILED: ${run.side} returned wrong data in ${run.workload} run ${run.run}: ${run.outcome.ok ? '' : run.outcome.error}`);
    return wrong.length > 0 ? 1 : 0;
  } finally {
    await cleanup.runAll();
  }
}

runMain(main);
