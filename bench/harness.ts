// The bench's steps: 1. start the S3 server and a bucket, 2. upload the fixture, 3. for every workload
// and run, give each side a cold start (page cache dropped, origin re-warmed, fresh mount) and measure it,
// 4. leave nothing behind. Every outcome, good or bad, becomes a cell.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createBucket, startS3Server, type S3Server } from '../e2e/support/s3-server';
import { selfSignedCertificate } from '../e2e/support/self-signed';
import versions from '../e2e/tools/versions.json';
import type { Cleanup } from './cleanup';
import { messageOf } from './exec';
import { startExpectProxy } from './expect-proxy';
import { buildFixture, uploadFixture, VOLUME_PREFIX, type Fixture } from './fixture';
import type { BenchOptions, SideName } from './options';
import { watchUsage, type MountUsage } from './mount-usage';
import { killAllMounts } from './sides/mount-process';
import { volumeStore, type Side, type Volume } from './sides/side';
import { filesystemOf, originPreparer, removeScratch } from './system';
import type { Outcome, RowResult } from './table';
import { formatNumber } from './table';
import { formatSize } from './units';
import { USAGE_ROWS, usageOutcome, usageRowResult } from './usage-rows';
import { WORKLOADS } from './workloads';
import type { RunContext, Workload } from './workloads/workload';

/** One measured run, as written to --json. */
export interface RawRun {
  workload: string;
  side: SideName;
  run: number;
  outcome: Outcome;
  note?: string;
}

/** What the harness learned, for the table and its footer. */
export interface BenchResult {
  rows: RowResult[];
  raw: RawRun[];
  /** Facts for the footer (origin location, cache dropping). */
  notes: string[];
}

const versitygwVersion = versions.versitygw.version;

/** Where progress lines go (stderr). */
export type Progress = (line: string) => void;

/** A side that could not even start (missing tool): its cells all show this reason. */
export type SideFailures = Partial<Record<SideName, string>>;

function rejectAfter(ms: number, what: string): { promise: Promise<never>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms / 1000} s`)), ms);
  });
  promise.catch(() => undefined);
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * Starts the server (registered for clean-up; with `keep`, its data dir stays) and makes the bucket; with `tls`, the
 * server speaks https with a certificate made now in `scratchRoot` for 127.0.0.1 and localhost.
 */
async function startOrigin(options: BenchOptions, scratchRoot: string, cleanup: Cleanup, progress: Progress): Promise<{ server: S3Server; bucket: string }> {
  const server = await startS3Server(options.tls ? { tls: selfSignedCertificate(fs.mkdtempSync(path.join(scratchRoot, 'tls-'))) } : {});
  cleanup.add('the S3 server', async () => {
    if (!options.keep) return server.stop();
    try {
      process.kill(server.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    progress(`bench: --keep: the bucket stays in ${server.dataDir} (serve it again with: versitygw posix ${server.dataDir})`);
  });
  const bucket = await createBucket(server, 'bench');
  return { server, bucket };
}

/**
 * One cold, measured run of one side: attach, measure, detach, then the workload's untimed clean-up. A mount's
 * process tree is watched from just before to just after the measured part (its start and stop are not counted).
 */
async function measureOnce(workload: Workload, side: Side, volume: Volume, scratch: string, context: RunContext, cleanup: Cleanup): Promise<{ outcome: Outcome; note?: string; usage?: MountUsage }> {
  const deadline = rejectAfter(context.options.timeoutMs + 60_000, `${workload.id} on ${side.name}`);
  try {
    const attachment = await Promise.race([side.attach(volume, scratch), deadline.promise]);
    const detach = cleanup.add(`${side.name} (${scratch})`, () => attachment.detach());
    const watch = attachment.kind === 'mount' && attachment.pid !== undefined ? watchUsage(attachment.pid) : undefined;
    try {
      const measured = attachment.kind === 'mount'
        ? workload.onMount(attachment.root, context)
        : workload.onStore(attachment.store, { ...context, keyPrefix: attachment.keyPrefix });
      const measurement = await Promise.race([measured, deadline.promise]);
      const usage = watch?.stop();
      return { outcome: { ok: true, value: measurement.value }, ...(measurement.note && { note: measurement.note }), ...(usage && { usage }) };
    } finally {
      watch?.stop();
      await detach();
    }
  } catch (error) {
    return { outcome: { ok: false, error: messageOf(error) } };
  } finally {
    deadline.cancel();
    await workload.afterRun?.(context).catch(() => undefined);
  }
}

/** Runs the whole bench; `sides` in column order, `unavailable` sides get their reason in every cell. */
export async function runBench(options: BenchOptions, sides: readonly Side[], unavailable: SideFailures, cleanup: Cleanup, progress: Progress): Promise<BenchResult> {
  const notes: string[] = [];
  const scratchRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-bench-'));
  cleanup.add('the scratch folder', () => removeScratch(scratchRoot));
  cleanup.add('any mount process left', killAllMounts);

  progress('bench: starting the S3 server (versitygw)');
  const { server, bucket } = await startOrigin(options, scratchRoot, cleanup, progress);
  const volume: Volume = { endpoint: server.endpoint, region: server.region, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, bucket, prefix: VOLUME_PREFIX, ...(server.tls && { caFile: server.tls.certFile }) };
  notes.push(server.tls
    ? `TLS on: versitygw serves ${server.endpoint} with a self-signed certificate openssl made for this run (RSA 2048, CN 127.0.0.1, subjectAltName IP:127.0.0.1 and DNS:localhost), in CERT = ${server.tls.certFile}; every side verifies it: ` +
      `${sides.map((side) => `${side.name} trusts it through ${side.trust}`).join('; ')}`
    : 'TLS off: versitygw serves plain http (`--tls` for https)');
  // Only the sides that need it go through the proxy, and only in the rows that upload: copying every byte through
  // the bench process costs CPU this 2-core machine does not have to spare (it cut rclone's sequential read by ~15%).
  const uploadRows = options.only.filter((id) => WORKLOADS[id].uploads);
  const fixed = options.expectFix && uploadRows.length > 0 ? sides.filter((side) => side.sendsMixedCaseExpect && !unavailable[side.name]).map((side) => side.name) : [];
  let proxiedVolume = volume;
  if (fixed.length > 0) {
    const proxy = await startExpectProxy(server.endpoint, server.tls);
    cleanup.add('the Expect proxy', () => proxy.close());
    proxiedVolume = { ...volume, endpoint: proxy.endpoint };
    notes.push(`${fixed.join(' and ')} ${fixed.length === 1 ? 'reaches' : 'reach'} the server in ${uploadRows.join(', ')} through bench/expect-proxy.ts (in the bench process), which lower-cases \`Expect: 100-Continue\`: versitygw ${versitygwVersion} answers only \`100-continue\`, and aws-sdk-go v1 clients would otherwise wait 1 s before every part body` +
      (server.tls ? '; over TLS the proxy ends each client\'s TLS with the run\'s certificate (which the client trusts as the server\'s, and which names 127.0.0.1) and opens its own TLS to versitygw, verifying it: it must read the request heads in plain text, and the sides behind it still pay for TLS as the others do' : ''));
  }
  const verifier = volumeStore(volume);
  cleanup.add('the verifying client', () => verifier.close());

  let started = performance.now();
  progress(`bench: making ${formatSize(options.size)} of random data and ${options.files} files of ${formatSize(options.fileSize)}`);
  const fixture: Fixture = buildFixture(options);
  await uploadFixture(verifier, fixture, VOLUME_PREFIX);
  progress(`bench: uploaded s3://${bucket}/${VOLUME_PREFIX}/ in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const bucketDir = path.join(server.dataDir, bucket);
  const prepareOrigin = originPreparer(bucketDir, notes);
  const rows: RowResult[] = [];
  const usageRows = USAGE_ROWS.filter((usageRow) => options.only.includes(usageRow.workload)).map((usageRow) => ({ usageRow, result: usageRowResult(usageRow) }));
  const raw: RawRun[] = [];
  for (const id of options.only) {
    const workload = WORKLOADS[id];
    const row: RowResult = { title: workload.title(options), unit: workload.unit, parallelism: workload.parallelism(options), runs: {} };
    rows.push(row);
    const ownUsageRows = usageRows.filter(({ usageRow }) => usageRow.workload === id);
    // Runs interleave the sides (run 1 of each, then run 2 of each...), so that a drift of the machine hits all of them.
    for (let run = 1; run <= options.runs; run += 1) {
      for (const side of sides) {
        const outcomes = (row.runs[side.name] ??= []);
        const reason = unavailable[side.name] ?? (workload.uploads ? side.notObjects : undefined);
        if (reason) {
          outcomes.push({ ok: false, error: reason, notRun: true });
          for (const { result } of ownUsageRows) (result.runs[side.name] ??= []).push({ ok: false, error: reason, notRun: true });
          continue;
        }
        // A side that failed once is not run again: its cell is an error whatever the other runs say.
        if (outcomes.some((outcome) => !outcome.ok)) continue;
        if (cleanup.stopping) throw new Error('interrupted');
        await prepareOrigin();
        const scratch = fs.mkdtempSync(path.join(scratchRoot, `${id}-${side.name}-${run}-`));
        const context: RunContext = { options, fixture, side: side.name, run, verifier, keyPrefix: `${VOLUME_PREFIX}/` };
        started = performance.now();
        const { outcome, note, usage } = await measureOnce(workload, side, workload.uploads && fixed.includes(side.name) ? proxiedVolume : volume, scratch, context, cleanup);
        outcomes.push(outcome);
        // The direct side has no mount process: its mount-cost cells stay empty.
        if (side.kind === 'mount') for (const { usageRow, result } of ownUsageRows) (result.runs[side.name] ??= []).push(usageOutcome(usageRow, outcome, usage, options));
        raw.push({ workload: id, side: side.name, run, outcome, ...(note && { note }) });
        const shown = outcome.ok ? `${formatNumber(outcome.value)} ${workload.unit}` : `error: ${outcome.error}`;
        progress(`bench: ${id} ${side.name} run ${run}/${options.runs}: ${shown}${note ? ` (${note})` : ''} [${((performance.now() - started) / 1000).toFixed(1)} s]`);
        removeScratch(scratch);
      }
    }
  }
  notes.push(`origin: versitygw (posix backend) on 127.0.0.1 over loopback, data dir ${server.dataDir} (${filesystemOf(server.dataDir)})`);
  return { rows: [...rows, ...usageRows.map(({ result }) => result)], raw, notes };
}
