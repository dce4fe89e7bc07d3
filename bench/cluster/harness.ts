// The cluster cache bench's steps:
// 1. start the S3 server, a counting relay in front of it (every side reads through it), upload the file;
// 2. for every run: (a) on fresh cache servers, a cold read through a new mount, then a warm read from the
//    servers' RAM through another new mount, the hot-blocks readers on new mounts, and after a restart of
//    the servers (RAM empty, disk kept, page cache dropped) a warm read from their disks; (b) the cold read
//    of granary without cache, rclone and the SDK; (b') on fresh cache servers with their S3 gateways, the SDK's
//    cold read through node 0's gateway and the same read again (warm), and the same SDK read straight from the
//    store; (c) the fan-out on each side; (d) the page-cache ceiling;
// 3. leave nothing behind. Every outcome, good or bad, becomes a cell.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createBucket, s3Client, startS3Server } from '../../e2e/support/s3-server';
import { S3Store } from '../../src/objectstore/s3';
import type { Cleanup } from '../cleanup';
import { messageOf } from '../exec';
import { BIG_FILE, buildFixture, sourceBytes, uploadFixture, VOLUME_PREFIX, type Fixture } from '../fixture';
import { DEFAULT_OPTIONS } from '../options';
import { mountGranary } from '../sides/granary';
import { killAllMounts } from '../sides/mount-process';
import { rcloneSide } from '../sides/rclone';
import type { MountAttachment, Volume } from '../sides/side';
import { filesystemOf, originPreparer, removeScratch } from '../system';
import { formatNumber, type Outcome } from '../table';
import { formatSize, MIB } from '../units';
import { startCacheCluster, type CacheCluster } from './cache-servers';
import { checkTier, checkWarmGateway, counterDelta, GATEWAY_SENT_BYTES_METRIC, totalServed } from './metrics';
import { nodeAddress, type CacheBenchOptions, type CacheColumn } from './options';
import { readThroughStore, readWholeFiles, sdkGetter, type TimedRead } from './reads';
import { startRelayProcess, type RelayProcess } from './relay';
import { selectedRows, type CacheRowId } from './rows';
import type { CacheRowResult } from './table';

/** One measured run of one cell, as written to --json. */
export interface CacheRawRun {
  row: CacheRowId;
  column: CacheColumn;
  run: number;
  outcome: Outcome;
  note?: string;
}

/** What the bench learned, for the table and its footer. */
export interface CacheBenchResult {
  rows: CacheRowResult[];
  raw: CacheRawRun[];
  notes: string[];
}

/** Where progress lines go (stderr). */
export type Progress = (line: string) => void;

/** What the bench runs besides itself. */
export interface CacheBenchTools {
  /** The granary CLI for the mounts and the cache servers. */
  cli: string;
  /** Why rclone cannot run, when it cannot: its cells show this. */
  rcloneUnavailable?: string;
}

/** The numbers one measurement yields (one or two rows), and anything worth a footnote. */
interface Measured {
  values: Partial<Record<CacheRowId, number>>;
  note?: string;
}

const mibPerSecond = (read: TimedRead) => read.bytes / MIB / read.seconds;
const mib = (bytes: number) => `${formatNumber(bytes / MIB)} MiB`;

/** Runs the whole cluster cache bench. */
export async function runCacheBench(options: CacheBenchOptions, tools: CacheBenchTools, cleanup: Cleanup, progress: Progress): Promise<CacheBenchResult> {
  const specs = selectedRows(options);
  const rows: CacheRowResult[] = specs.map((spec) => ({ ...spec, runs: {} }));
  const raw: CacheRawRun[] = [];
  const notes: string[] = [];
  const wants = (row: CacheRowId) => specs.some((spec) => spec.id === row);

  const scratchRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-cache-bench-'));
  cleanup.add('the scratch folder', () => removeScratch(scratchRoot));
  cleanup.add('any mount process left', killAllMounts);

  progress('bench: starting the S3 server (versitygw) and the counting relay in front of it');
  const server = await startS3Server();
  cleanup.add('the S3 server', () => server.stop());
  const bucket = await createBucket(server, 'bench');
  const origin = new URL(server.endpoint);
  const relay: RelayProcess = await startRelayProcess({ host: origin.hostname, port: Number(origin.port) });
  cleanup.add('the counting relay', () => relay.close());
  const credentials = { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };
  // Every side reaches the object store through the relay; the setup's upload goes around it.
  const volume: Volume = { endpoint: relay.endpoint, region: server.region, ...credentials, bucket, prefix: VOLUME_PREFIX };
  const uploader = new S3Store({ bucket, endpoint: server.endpoint, region: server.region, credentials }, {});
  cleanup.add('the uploading client', () => uploader.close());

  let started = performance.now();
  progress(`bench: making ${formatSize(options.size)} of random data and uploading it`);
  const fixture: Fixture = buildFixture({ ...DEFAULT_OPTIONS, size: options.size, files: 0, randomReads: 1, blockBytes: options.blockBytes, seed: options.seed });
  await uploadFixture(uploader, fixture, VOLUME_PREFIX);
  progress(`bench: uploaded s3://${bucket}/${VOLUME_PREFIX}/${BIG_FILE} in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const tokenFile = path.join(scratchRoot, 'token');
  fs.writeFileSync(tokenFile, randomBytes(24).toString('hex'), { mode: 0o600 });
  // The S3 gateways' one access key, read-only on the bucket; written (0600) in each gateway cluster's folder, removed with it.
  const gatewayKey = { accessKeyId: `BENCH${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(24).toString('hex') };
  const hosts = Array.from({ length: options.nodes }, (_, index) => nodeAddress(index));
  const serverEnv = { AWS_ENDPOINT_URL: volume.endpoint, AWS_REGION: volume.region, AWS_ACCESS_KEY_ID: volume.accessKeyId, AWS_SECRET_ACCESS_KEY: volume.secretAccessKey };
  const bucketDir = path.join(server.dataDir, bucket);
  const readPlan = { blockBytes: options.blockBytes, timeoutMs: options.timeoutMs };
  const bigFile = (mount: MountAttachment) => path.join(mount.root, BIG_FILE);

  /** Drops the page cache and reads the origin's files back into it: cold clients, an origin that serves from RAM. */
  const prepare = originPreparer(bucketDir, notes);

  /** A scratch folder for one setup, removed with everything else if not before. */
  const scratchFor = (name: string) => fs.mkdtempSync(path.join(scratchRoot, `${name}-`));

  /** Runs `work` with `attach`'s mount up, detaching it afterwards (and at clean-up if interrupted). */
  const withMounts = async <T>(attaches: Array<() => Promise<MountAttachment>>, work: (mounts: MountAttachment[]) => Promise<T>): Promise<T> => {
    const detaches: Array<() => Promise<void>> = [];
    try {
      const mounts = await Promise.all(attaches.map(async (attach) => {
        const mount = await attach();
        detaches.push(cleanup.add(`the mount at ${mount.root}`, () => mount.detach()));
        return mount;
      }));
      return await work(mounts);
    } finally {
      // A mount that fails to come up leaves the others to detach; their failures are reported, the first wins.
      const results = await Promise.allSettled(detaches.map((detach) => detach()));
      const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed) progress(`bench: ${messageOf(failed.reason)}`);
    }
  };

  const cacheFlags = (cluster: CacheCluster) => ['--read-only', '--cache-peers', cluster.peers.join(','), '--cache-token-file', tokenFile];
  const granaryMount = (name: string, flags: string[]) => () => mountGranary(tools.cli, volume, scratchFor(name), flags);
  const rcloneMount = (name: string) => async () => {
    if (tools.rcloneUnavailable) throw new Error(tools.rcloneUnavailable);
    const attachment = await rcloneSide().attach(volume, scratchFor(name));
    if (attachment.kind !== 'mount') throw new Error('rclone did not mount');
    return attachment;
  };

  /** Starts cache servers on fresh disk dirs (with `gateway`, each with its S3 gateway), stopped (and their dirs removed) once `work` is done. */
  const withCluster = async <T>(name: string, work: (cluster: CacheCluster) => Promise<T>, gateway = false): Promise<T> => {
    const dir = scratchFor(name);
    const keysFile = path.join(dir, 'keys.json');
    if (gateway) fs.writeFileSync(keysFile, JSON.stringify({ keys: [{ ...gatewayKey, grants: [bucket] }] }), { mode: 0o600 });
    const cluster = await startCacheCluster({
      cli: tools.cli, hosts, dir, ramBytes: options.serverRamBytes, diskBytes: options.serverDiskBytes, tokenFile, env: serverEnv, ...(gateway && { s3: { keysFile } }),
    });
    const stop = cleanup.add(`the cache servers of ${name}`, () => cluster.stop());
    try {
      return await work(cluster);
    } finally {
      await stop();
      removeScratch(dir);
    }
  };

  /**
   * Measures one cell (or the two cells of one measurement) unless none of its rows is wanted or one of its
   * cells failed before; counts what the relay passed meanwhile into the note. Resolves true when it ran well.
   */
  const record = async (rowIds: CacheRowId[], column: CacheColumn, run: number, measure: () => Promise<Measured>): Promise<boolean> => {
    const targets = rows.filter((row) => rowIds.includes(row.id));
    if (targets.length === 0) return false;
    if (cleanup.stopping) throw new Error('interrupted');
    if (targets.some((row) => row.runs[column]?.some((outcome) => !outcome.ok))) return false;
    started = performance.now();
    let outcomes: Array<[CacheRowResult, Outcome]>;
    let note: string | undefined;
    try {
      const before = await relay.downstreamBytes();
      const measured = await measure();
      const fromStore = (await relay.downstreamBytes()) - before;
      note = [measured.note, `object store sent ${mib(fromStore)} through the relay`].filter(Boolean).join('; ');
      outcomes = targets.map((row) => {
        const value = measured.values[row.id];
        return [row, value === undefined ? { ok: false, error: `no ${row.id} number measured` } : { ok: true, value }];
      });
    } catch (error) {
      outcomes = targets.map((row) => [row, { ok: false, error: messageOf(error) }]);
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    for (const [row, outcome] of outcomes) {
      (row.runs[column] ??= []).push(outcome);
      raw.push({ row: row.id, column, run, outcome, ...(note && { note }) });
      const shown = outcome.ok ? `${formatNumber(outcome.value)} ${row.unit}` : `error: ${outcome.error}`;
      progress(`bench: ${row.id} ${column} run ${run}/${options.runs}: ${shown}${note ? ` (${note})` : ''} [${seconds} s]`);
    }
    return outcomes.every(([, outcome]) => outcome.ok);
  };

  /** Makes `error` the outcome of run `run` of every cell of `rowIds` that has none yet (a setup around the measurements failed). */
  const failUnmeasured = (rowIds: CacheRowId[], column: CacheColumn, run: number, error: unknown) => {
    for (const row of rows.filter((candidate) => rowIds.includes(candidate.id))) {
      const outcomes = (row.runs[column] ??= []);
      if (outcomes.length >= run) continue;
      const outcome: Outcome = { ok: false, error: messageOf(error) };
      outcomes.push(outcome);
      raw.push({ row: row.id, column, run, outcome });
      progress(`bench: ${row.id} ${column} run ${run}/${options.runs}: error: ${outcome.error}`);
    }
  };

  /**
   * A read that also warms the cache servers for the measurements after it: measured as the cells of `rowIds` when
   * they are wanted and none failed before, else run off the table. Resolves true when it ran well.
   */
  const prime = async (rowIds: CacheRowId[], column: CacheColumn, run: number, measure: () => Promise<Measured>): Promise<boolean> => {
    const targets = rows.filter((row) => rowIds.includes(row.id));
    if (targets.length > 0 && targets.every((row) => (row.runs[column] ?? []).every((outcome) => outcome.ok))) return record(rowIds, column, run, measure);
    return measure().then(() => true, (error: unknown) => {
      progress(`bench: the read that warms the cache servers failed: ${messageOf(error)}`);
      return false;
    });
  };

  /** `measure`, unless the read that was to warm the cache servers failed. */
  const afterPriming = (primed: boolean, measure: () => Promise<Measured>) => async () => {
    if (!primed) throw new Error('skipped: the cold read that warms the cache servers failed');
    return measure();
  };

  /** One reader reads the file through a new mount. */
  const singleRead = async (attach: () => Promise<MountAttachment>): Promise<TimedRead> => {
    await prepare();
    return withMounts([attach], ([mount]) => readWholeFiles([bigFile(mount!)], fixture, readPlan));
  };

  /**
   * The hot-blocks readers, staggered and bypassing the page cache, over warm cache servers: all on one new
   * mount (sharing its RAM copy, as a node's pods share its mount) or each on a new mount of its own.
   */
  const hotBlocks = async (cluster: CacheCluster, sharing: 'shared' | 'alone'): Promise<Measured> => {
    await prepare();
    const mounts = sharing === 'shared' ? 1 : options.hotReaders;
    const attaches = Array.from({ length: mounts }, (_, index) => granaryMount(`hot-${sharing}-${index}`, cacheFlags(cluster)));
    return withMounts(attaches, async (attached) => {
      const before = await cluster.counters();
      const files = Array.from({ length: options.hotReaders }, (_, index) => bigFile(attached[index % attached.length]!));
      const read = await readWholeFiles(files, fixture, { ...readPlan, direct: true, staggerBytes: options.staggerBytes });
      const served = totalServed(counterDelta(before, await cluster.counters()));
      const [servedRow, speedRow] = sharing === 'shared' ? (['hot-served', 'hot-speed'] as const) : (['hot-alone-served', 'hot-alone-speed'] as const);
      return { values: { [servedRow]: served / read.bytes, [speedRow]: mibPerSecond(read) }, note: `cache servers served ${mib(served)} for ${mib(read.bytes)} read` };
    });
  };

  /** (a) Cold, warm RAM, hot blocks and warm disk of granary+cache, on one set of fresh cache servers. */
  const cacheChain = (run: number) => withCluster(`cache-${run}`, async (cluster) => {
    const column: CacheColumn = 'granary+cache';
    const cold = async (): Promise<Measured> => {
      const read = await singleRead(granaryMount('cold-cache', cacheFlags(cluster)));
      const counters = await cluster.counters();
      return { values: { cold: mibPerSecond(read) }, note: `cache servers filled ${mib(counters.originBytes)} from the object store` };
    };
    // The cold read is also what warms the servers for the rest: it runs, off the table, even when its cell is not wanted or failed before.
    const primed = await prime(['cold'], column, run, cold);
    await record(['warm-ram'], column, run, afterPriming(primed, async () => {
      const before = await cluster.counters();
      const read = await singleRead(granaryMount('warm-ram', cacheFlags(cluster)));
      return { values: { 'warm-ram': mibPerSecond(read) }, note: checkTier('ram', counterDelta(before, await cluster.counters()), fixture.size) };
    }));
    await record(['hot-served', 'hot-speed'], column, run, afterPriming(primed, () => hotBlocks(cluster, 'shared')));
    await record(['hot-alone-served', 'hot-alone-speed'], column, run, afterPriming(primed, () => hotBlocks(cluster, 'alone')));
    await record(['warm-disk'], column, run, afterPriming(primed, async () => {
      await cluster.restart();
      // After the restart and this page-cache drop, the servers' blocks are on the disk only.
      const read = await singleRead(granaryMount('warm-disk', cacheFlags(cluster)));
      return { values: { 'warm-disk': mibPerSecond(read) }, note: checkTier('disk', await cluster.counters(), fixture.size) };
    }));
  });

  /**
   * The file read by a new plain @aws-sdk/client-s3 client (`parallel` ranged GetObject calls), after the usual
   * preparation: the timed read, and the object store's bytes through the relay meanwhile (× the file).
   */
  const sdkRead = async (endpoint: string, key: { accessKeyId: string; secretAccessKey: string }): Promise<{ read: TimedRead; fromStore: number }> => {
    await prepare();
    const client = s3Client({ endpoint, region: volume.region, ...key });
    try {
      const before = await relay.downstreamBytes();
      const read = await readThroughStore(sdkGetter(client, bucket), `${VOLUME_PREFIX}/${BIG_FILE}`, fixture, options.rangeBytes, options.parallel);
      return { read, fromStore: ((await relay.downstreamBytes()) - before) / fixture.size };
    } finally {
      client.destroy();
    }
  };

  /** (b') The SDK through node 0's S3 gateway on fresh cache servers: the cold read, then the same read again by a new client (warm). */
  const gatewayChain = (run: number) => withCluster(`gateway-${run}`, async (cluster) => {
    const column: CacheColumn = 'granary+cache';
    const gatewayRead = () => sdkRead(cluster.s3Endpoints[0]!, gatewayKey);
    const primed = await prime(['gateway-cold', 'gateway-cold-origin'], column, run, async () => {
      const { read, fromStore } = await gatewayRead();
      const counters = await cluster.counters();
      return { values: { 'gateway-cold': mibPerSecond(read), 'gateway-cold-origin': fromStore }, note: `cache servers filled ${mib(counters.originBytes)} from the object store` };
    });
    await record(['gateway-warm', 'gateway-warm-origin'], column, run, afterPriming(primed, async () => {
      const before = await cluster.counters();
      const sentBefore = await cluster.metricSum(GATEWAY_SENT_BYTES_METRIC);
      const { read, fromStore } = await gatewayRead();
      const sent = (await cluster.metricSum(GATEWAY_SENT_BYTES_METRIC)) - sentBefore;
      return { values: { 'gateway-warm': mibPerSecond(read), 'gateway-warm-origin': fromStore }, note: checkWarmGateway(counterDelta(before, await cluster.counters()), sent, fixture.size) };
    }));
  }, true);

  /** (c) Every node's mount (one per node) with its readers, all at once: bytes from the object store and the aggregate. */
  const fanOut = async (attaches: Array<() => Promise<MountAttachment>>): Promise<Measured> => {
    await prepare();
    return withMounts(attaches, async (mounts) => {
      const files = mounts.flatMap((mount) => Array.from({ length: options.readersPerNode }, () => bigFile(mount)));
      const before = await relay.downstreamBytes();
      const read = await readWholeFiles(files, fixture, readPlan);
      const fromStore = (await relay.downstreamBytes()) - before;
      return { values: { 'fan-out-origin': fromStore / fixture.size, 'fan-out-speed': mibPerSecond(read) }, note: `the readers read ${mib(read.bytes)}` };
    });
  };
  const perNode = (make: (index: number) => () => Promise<MountAttachment>) => hosts.map((_, index) => make(index));

  const localFile = path.join(scratchRoot, 'local', BIG_FILE);
  if (wants('page-cache')) {
    fs.mkdirSync(path.dirname(localFile));
    fs.writeFileSync(localFile, sourceBytes(fixture, 0, fixture.size));
  }

  const needsChain = ['cold', 'warm-ram', 'warm-disk', 'hot-served', 'hot-alone-served'].some((row) => wants(row as CacheRowId));
  const fanOutRows: CacheRowId[] = ['fan-out-origin', 'fan-out-speed'];
  const gatewayRows: CacheRowId[] = ['gateway-cold', 'gateway-cold-origin', 'gateway-warm', 'gateway-warm-origin'];
  for (let run = 1; run <= options.runs; run += 1) {
    if (needsChain) await cacheChain(run).catch((error: unknown) => failUnmeasured(['cold', 'warm-ram', 'hot-served', 'hot-speed', 'hot-alone-served', 'hot-alone-speed', 'warm-disk'], 'granary+cache', run, error));
    await record(['cold'], 'granary', run, async () => ({ values: { cold: mibPerSecond(await singleRead(granaryMount('cold-granary', ['--read-only']))) } }));
    await record(['cold'], 'rclone', run, async () => ({ values: { cold: mibPerSecond(await singleRead(rcloneMount('cold-rclone'))) } }));
    await record(['cold'], 'direct', run, async () => {
      await prepare();
      const store = new S3Store({ bucket, endpoint: volume.endpoint, region: volume.region, credentials }, {});
      try {
        return { values: { cold: mibPerSecond(await readThroughStore(store, `${VOLUME_PREFIX}/${BIG_FILE}`, fixture, options.rangeBytes, options.parallel)) } };
      } finally {
        store.close();
      }
    });
    if (wants('gateway-cold')) {
      await gatewayChain(run).catch((error: unknown) => failUnmeasured(gatewayRows, 'granary+cache', run, error));
      await record(['gateway-cold', 'gateway-cold-origin'], 'direct', run, async () => {
        const { read, fromStore } = await sdkRead(volume.endpoint, credentials);
        return { values: { 'gateway-cold': mibPerSecond(read), 'gateway-cold-origin': fromStore } };
      });
    }
    await record(fanOutRows, 'granary+cache', run, () => withCluster(`fan-out-${run}`, (cluster) => fanOut(perNode((index) => granaryMount(`fan-out-cache-${index}`, cacheFlags(cluster))))));
    await record(fanOutRows, 'granary', run, () => fanOut(perNode((index) => granaryMount(`fan-out-granary-${index}`, ['--read-only']))));
    await record(fanOutRows, 'rclone', run, () => fanOut(perNode((index) => rcloneMount(`fan-out-rclone-${index}`))));
    await record(['page-cache'], 'local', run, async () => {
      // The first read puts the file in the page cache (and checks it); the second, timed, reads it from there.
      await readWholeFiles([localFile], fixture, readPlan);
      return { values: { 'page-cache': mibPerSecond(await readWholeFiles([localFile], fixture, readPlan)) } };
    });
  }

  notes.push(
    `origin: versitygw (posix backend) on 127.0.0.1, data dir on ${filesystemOf(server.dataDir)}; every side reads it through a counting TCP relay ` +
      '(e2e/support/tcp-relay.ts, in a process of its own): that hop is in every number, and its byte count (responses, headers included) is the "read from the object store" row',
  );
  notes.push(`scratch (mountpoints, cache servers' disk tiers, the local file): ${filesystemOf(scratchRoot)}`);
  return { rows, raw, notes };
}
