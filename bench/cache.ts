#!/usr/bin/env node
// `node dist/bench/cache.js`: the cluster cache bench. Parse flags, install the tools, run the rows,
// print the table on stdout (progress on stderr). No logic here beyond wiring.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import versions from '../e2e/tools/versions.json';
import { Cleanup } from './cleanup';
import { commandLine, install, progress, runMain, sizeFlag, wholeFlag } from './command';
import { checkCacheOptions, DEFAULT_CACHE_OPTIONS, CACHE_ROW_GROUPS, withServerCaps, type CacheBenchOptions } from './cluster/options';
import { runCacheBench } from './cluster/harness';
import { renderCacheReport } from './cluster/report';
import { messageOf } from './exec';
import { parseList } from './options';
import { GRANARY_CLI, granarySide } from './sides/granary';
import { rcloneSide } from './sides/rclone';
import { gitRevision, machineSummary } from './system';
import { formatSize } from './units';

function buildProgram(): Command {
  const d = DEFAULT_CACHE_OPTIONS;
  return new Command('cache-bench')
    .description('The cluster cache against granary alone, rclone and the SDK on a local real S3 server: cold, warm RAM, warm disk, the S3 gateway, fan-out, hot blocks and the page-cache ceiling; prints a markdown table on stdout.')
    .option('--size <size>', 'size of the file every row reads', sizeFlag, d.size)
    .option('--runs <n>', 'measured runs per cell (the table shows the median)', wholeFlag, d.runs)
    .option('--only <groups>', `rows to run, comma-separated: ${CACHE_ROW_GROUPS.join(',')}`, d.only.join(','))
    .option('--nodes <n>', 'simulated nodes: one cache server each (127.0.0.11 and up), one mount each in the fan-out', wholeFlag, d.nodes)
    .option('--readers-per-node <n>', 'readers on each node\'s mount in the fan-out', wholeFlag, d.readersPerNode)
    .option('--hot-readers <n>', 'staggered readers on one node in the hot-blocks rows', wholeFlag, d.hotReaders)
    .option('--stagger <size>', 'a hot-blocks reader starts once the one before it has read this much', sizeFlag, d.staggerBytes)
    .option('--server-ram <size>', 'RAM tier of each cache server (default: the file size)', sizeFlag)
    .option('--server-disk <size>', 'disk tier of each cache server (default: twice the RAM tier)', sizeFlag)
    .option('--parallel <n>', 'the direct side\'s ranged GETs in flight, and the S3 gateway rows\' GetObject calls', wholeFlag, d.parallel)
    .option('--timeout <seconds>', 'longest one measured run may take', wholeFlag, d.timeoutMs / 1000)
    .option('--granary-cli <file>', 'the granary CLI to run for mounts and cache servers (default: this checkout\'s dist/src/cli/index.js)')
    .option('--json <file>', 'also write every run\'s numbers to this file');
}

async function main(): Promise<number> {
  const program = buildProgram().parse(process.argv);
  const flags = program.opts<{
    size: number; runs: number; only: string; nodes: number; readersPerNode: number; hotReaders: number; stagger: number;
    serverRam?: number; serverDisk?: number; parallel: number; timeout: number; granaryCli?: string; json?: string;
  }>();
  const options: CacheBenchOptions = withServerCaps({
    ...DEFAULT_CACHE_OPTIONS,
    size: flags.size,
    runs: flags.runs,
    only: parseList(flags.only, CACHE_ROW_GROUPS, 'row group'),
    nodes: flags.nodes,
    readersPerNode: flags.readersPerNode,
    hotReaders: flags.hotReaders,
    staggerBytes: flags.stagger,
    ...(flags.serverRam !== undefined && { serverRamBytes: flags.serverRam }),
    ...(flags.serverDisk !== undefined && { serverDiskBytes: flags.serverDisk }),
    parallel: flags.parallel,
    timeoutMs: flags.timeout * 1000,
    ...(flags.json && { json: path.resolve(flags.json) }),
  });
  checkCacheOptions(options);
  if (process.getuid?.() !== 0) progress('bench: warning: not root; FUSE mounts and dropping the page cache need root');

  if (install('e2e/tools/install.sh') !== 0) throw new Error("the S3 server could not be installed: fix what e2e/tools/install.sh said above and run 'npm run tools'");
  let rcloneUnavailable: string | undefined;
  const rcloneNeeded = options.only.some((group) => group === 'cold' || group === 'fan-out');
  if (rcloneNeeded && install('bench/install.sh') !== 0) rcloneUnavailable = "rclone is not installed: run 'bash bench/install.sh'";

  const cli = flags.granaryCli ? path.resolve(flags.granaryCli) : GRANARY_CLI;
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run 'npm run build' first`);
  const revision = await gitRevision(path.resolve(path.dirname(cli), '..', '..', '..'));
  const versionList: Record<string, string> = { node: process.version, versitygw: versions.versitygw.version, granary: await granarySide(revision, cli).version() };
  if (rcloneNeeded) {
    try {
      versionList.rclone = await rcloneSide().version();
    } catch (error) {
      rcloneUnavailable ??= messageOf(error);
    }
  }

  const cleanup = new Cleanup();
  cleanup.onSignals();
  try {
    const loadBefore = os.loadavg();
    progress(`bench: ${options.only.join(', ')}; file ${formatSize(options.size)}, ${options.nodes} nodes, ${options.runs} run(s)`);
    const result = await runCacheBench(options, { cli, ...(rcloneUnavailable && { rcloneUnavailable }) }, cleanup, progress);
    const context = { command: commandLine(process.env.npm_lifecycle_event === 'bench:cache' ? 'npm run bench:cache' : 'node dist/bench/cache.js'), machine: machineSummary(), versions: versionList, loadBefore, loadAfter: os.loadavg() };
    process.stdout.write(`${renderCacheReport(result, options, context)}\n`);
    if (options.json) {
      fs.writeFileSync(options.json, `${JSON.stringify({ ...context, options, ...result }, null, 2)}\n`);
      progress(`bench: raw numbers written to ${options.json}`);
    }
    const wrong = result.raw.filter((run) => !run.outcome.ok && /WRONG/.test(run.outcome.error));
    for (const run of wrong) progress(`bench: FAILED: ${run.column} returned wrong data in ${run.row} run ${run.run}: ${run.outcome.ok ? '' : run.outcome.error}`);
    return wrong.length > 0 ? 1 : 0;
  } finally {
    await cleanup.runAll();
  }
}

runMain(main);
