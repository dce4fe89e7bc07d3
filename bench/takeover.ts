// npm run bench:takeover: how long a reader stalls when granary's serving process is killed and a new one takes the
// FUSE session over. One mount with every default (`granary mount`: the holder of the FUSE connection and its serving
// process), --readers threads streaming a file of --size in 1 MiB reads pass after pass (each pass's sha256 checked),
// and --kills SIGKILLs of the serving process, --interval after the previous takeover was logged. Before each kill the
// kernel's cached pages of the file are dropped (dd iflag=nocache), so the readers are reading through the mount when
// it dies. For each kill: the stall (the longest a read that was waiting at the kill took to return, over the readers)
// and how long the connection went unserved (the successor's log line). Prints a markdown table on stdout.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { randomFillSync, createHash } from 'node:crypto';
import { Command } from 'commander';
import { servingProcess } from '../e2e/support/mount-holder';
import { createBucket, startS3Server } from '../e2e/support/s3-server';
import { S3Store } from '../src/objectstore/s3';
import { Cleanup } from './cleanup';
import { commandLine, install, progress, runMain, sizeFlag, wholeFlag } from './command';
import { run } from './exec';
import { HEALTHY_AFTER_MS } from '../src/roles/mount-holder';
import { GRANARY_CLI, mountGranary } from './sides/granary';
import { gitRevision, machineSummary, removeScratch } from './system';
import type { StallReaderInput, StallReaderResult } from './takeover/stall-reader';
import { formatSize, MIB } from './units';

const UPLOAD_PART_BYTES = 16 * MIB;
/** Longest a successor may take to log its takeover before the bench gives up. */
const TAKEOVER_TIMEOUT_MS = 60_000;

/** The value below which a share `q` of `values` lies (nearest rank). */
function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

/** The takeover lines of the mount log, in order. */
function takeovers(logFile: string): Array<{ unservedMs: number; resent: boolean }> {
  let text: string;
  try {
    text = fs.readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((line) => line.includes('took over the FUSE session')).map((line) => JSON.parse(line) as { unservedMs: number; resent: boolean });
}

/** How long the reads waiting at `at` took to return: the longest gap, over the readers, between completions around it. */
function stallAt(at: number, readers: readonly StallReaderResult[]): number {
  let stall = 0;
  for (const reader of readers) {
    const after = reader.completions.findIndex((time) => time > at);
    if (after <= 0) continue;
    stall = Math.max(stall, reader.completions[after]! - reader.completions[after - 1]!);
  }
  return stall;
}

async function main(): Promise<number> {
  const flags = new Command('takeover-bench')
    .description('How long readers of a granary mount stall while its serving process is SIGKILLed and taken over; prints a markdown table on stdout.')
    .option('--kills <n>', 'SIGKILLs of the serving process', wholeFlag, 20)
    .option('--readers <n>', 'threads reading the file pass after pass', wholeFlag, 4)
    .option('--size <size>', 'size of the file the readers read', sizeFlag, 256 * MIB)
    // Past the holder's HEALTHY_AFTER_MS: each kill is then an isolated death, never a crash loop it would give up on.
    .option('--interval <ms>', 'time between a takeover and the next kill', wholeFlag, HEALTHY_AFTER_MS + 1000)
    .option('--granary-cli <file>', 'the granary CLI to mount with (default: this checkout\'s dist/src/cli/index.js)')
    .parse(process.argv)
    .opts<{ kills: number; readers: number; size: number; interval: number; granaryCli?: string }>();
  if (process.getuid?.() !== 0) throw new Error('run the takeover bench as root: it mounts with FUSE');
  if (install('e2e/tools/install.sh') !== 0) throw new Error("the S3 server could not be installed: fix what e2e/tools/install.sh said above and run 'npm run tools'");
  const cli = flags.granaryCli ? path.resolve(flags.granaryCli) : GRANARY_CLI;
  const cleanup = new Cleanup();
  cleanup.onSignals();
  try {
    progress('bench: starting the S3 server (versitygw)');
    const server = await startS3Server();
    cleanup.add('the S3 server', () => server.stop());
    const bucket = await createBucket(server, 'takeover');
    const store = new S3Store({ bucket, endpoint: server.endpoint, region: server.region, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } }, {});
    cleanup.add('the S3 client', () => store.close());
    const data = Buffer.allocUnsafe(flags.size);
    randomFillSync(data);
    const sha256 = createHash('sha256').update(data).digest('hex');
    progress(`bench: uploading a ${formatSize(flags.size)} file`);
    const upload = await store.createMultipartUpload('vol/model.bin');
    for (let part = 0; part * UPLOAD_PART_BYTES < data.length; part++) {
      await upload.uploadPart(part + 1, data.subarray(part * UPLOAD_PART_BYTES, (part + 1) * UPLOAD_PART_BYTES));
    }
    await upload.complete();

    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-takeover-bench-'));
    cleanup.add('the scratch folder', () => removeScratch(scratch));
    const volume = { endpoint: server.endpoint, region: server.region, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, bucket, prefix: 'vol' };
    const mount = await mountGranary(cli, volume, scratch, ['--state-dir', path.join(scratch, 'state')]);
    cleanup.add('the mount', () => mount.detach());
    const logFile = path.join(scratch, 'granary-mount.log');
    const file = path.join(mount.root, 'model.bin');

    const stop = new SharedArrayBuffer(4);
    const readers = Array.from({ length: flags.readers }, () => {
      const input: StallReaderInput = { file, sha256, stop };
      const worker = new Worker(path.join(__dirname, 'takeover', 'stall-reader.js'), { workerData: input });
      return new Promise<StallReaderResult>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    });
    cleanup.add('the readers', () => void Atomics.store(new Int32Array(stop), 0, 1));

    const kills: number[] = [];
    for (let kill = 1; kill <= flags.kills; kill++) {
      await new Promise((resolve) => setTimeout(resolve, flags.interval));
      // The kernel's cached pages go, so the readers read through the mount when it dies.
      await run('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
      const serving = servingProcess(mount.pid as number);
      if (serving === undefined) throw new Error(`the mount holder ${mount.pid} has no serving process; its log: ${logFile}`);
      kills.push(performance.timeOrigin + performance.now());
      process.kill(serving, 'SIGKILL');
      const deadline = Date.now() + TAKEOVER_TIMEOUT_MS;
      while (takeovers(logFile).length < kill) {
        if (Date.now() > deadline) throw new Error(`no takeover logged within ${TAKEOVER_TIMEOUT_MS / 1000} s of kill ${kill}; the mount log: ${logFile}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      progress(`bench: kill ${kill}/${flags.kills}: taken over after ${takeovers(logFile)[kill - 1]?.unservedMs} ms unserved`);
    }
    await new Promise((resolve) => setTimeout(resolve, flags.interval));
    Atomics.store(new Int32Array(stop), 0, 1);
    const results = await Promise.all(readers);

    const stalls = kills.map((at) => stallAt(at, results));
    const unserved = takeovers(logFile).map((line) => line.unservedMs);
    const gaps = results.flatMap((reader) => reader.completions.slice(1).map((time, i) => time - reader.completions[i]!));
    const errors = results.flatMap((reader) => reader.errors);
    const wrong = results.reduce((sum, reader) => sum + reader.wrongPasses, 0);
    const passes = results.reduce((sum, reader) => sum + reader.passes, 0);
    const ms = (value: number) => `${Math.round(value)}`;
    const revision = await gitRevision(path.resolve(path.dirname(cli), '..', '..', '..'));
    const lines = [
      `| ${flags.kills} SIGKILLs of the serving process, ${flags.readers} readers | p50 | p90 | max |`,
      '| --- | --- | --- | --- |',
      `| stall a reader saw (ms): the longest read waiting at a kill | ${ms(quantile(stalls, 0.5))} | ${ms(quantile(stalls, 0.9))} | ${ms(Math.max(...stalls))} |`,
      `| connection unserved (ms): kill to the successor serving (its log) | ${ms(quantile(unserved, 0.5))} | ${ms(quantile(unserved, 0.9))} | ${ms(Math.max(...unserved))} |`,
      `| a 1 MiB read without a kill (ms), for comparison | ${ms(quantile(gaps, 0.5))} | ${ms(quantile(gaps, 0.9))} | p99 ${ms(quantile(gaps, 0.99))} |`,
      '',
      `Reads: ${passes} whole passes of the ${formatSize(flags.size)} file checked (sha256), ${wrong} wrong; ${errors.length} failed calls${errors.length > 0 ? `: ${[...new Set(errors)].slice(0, 3).join('; ')}` : ''}.`,
      `Kernel: FUSE_NOTIFY_RESEND ${takeovers(logFile).every((line) => line.resent) ? 'used at every takeover' : 'not available: the reads the dead process held failed with EIO'}.`,
      `Command: \`${commandLine(process.env.npm_lifecycle_event === 'bench:takeover' ? 'npm run bench:takeover' : 'node dist/bench/takeover.js')}\``,
      `Machine: ${machineSummary()}; load before the end ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}`,
      `granary ${revision}; every mount default, --state-dir in a scratch folder; versitygw on 127.0.0.1`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return errors.length > 0 || wrong > 0 ? 1 : 0;
  } finally {
    await cleanup.runAll();
  }
}

runMain(main);
