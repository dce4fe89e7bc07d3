// `granary warmup s3://BUCKET/PREFIX`: parse flags (the shared --cache-* flags and the warm-up's own), build the
// WarmupConfig, reach the cache ring and say which listed servers are ready, call warmPrefix, show progress on
// stderr and the summary on stdout.
import { SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import type { CacheConnection } from '../cache/connection';
import { endpointIdentity } from '../cache/protocol';
import type { WarmupProgress, WarmupSummary } from '../cache/warmup';
import { LOG_LEVELS } from '../config/log-levels';
import { formatByteSize } from '../config/size';
import { DEFAULT_WARMUP_CONCURRENCY, parseWarmupConfig, type WarmupConfig } from '../config/warmup';
import { createLogger, type Logger } from '../log/logger';
import type { OptionFlags } from '../config/parse';
import { addCacheClientOptions, cacheClientFlags, cacheClientInput, flagParser, wholeNumber, type CacheClientFlags } from './cache-flags';
import { cacheServersReport, describeCacheServers, describeUnready, type CacheServersReport } from './cache-servers';
import { logFormatOption } from './log-flags';

/** How often the progress line is printed when stderr is not a terminal (ms). */
export const PLAIN_PROGRESS_INTERVAL_MS = 5000;

/** How many failures the summary prints. */
const FAILURES_SHOWN = 10;

/** The flags of `granary warmup` as commander parses them. */
export interface WarmupFlags extends CacheClientFlags {
  allowPartial?: boolean;
  concurrency?: number;
  json?: boolean;
  logLevel?: (typeof LOG_LEVELS)[number];
}

/** The flag (or argument) of each option of `granary warmup`, for the configuration's messages. */
const WARMUP_FLAGS: OptionFlags = {
  source: 'SOURCE',
  allowPartial: '--allow-partial',
  concurrency: '--concurrency',
  json: '--json',
  logLevel: '--log-level',
  ...cacheClientFlags(),
};

/**
 * Validates the source and flags of `granary warmup` into its WarmupConfig; throws one Error listing every problem,
 * each with the fix. The source must be s3://BUCKET[/PREFIX]: a local folder is not in any cache.
 */
export function parseWarmupFlags(source: string, flags: WarmupFlags): WarmupConfig {
  return parseWarmupConfig({
    source,
    cache: cacheClientInput(flags),
    ...(flags.allowPartial !== undefined && { allowPartial: flags.allowPartial }),
    ...(flags.concurrency !== undefined && { concurrency: flags.concurrency }),
    ...(flags.json !== undefined && { json: flags.json }),
    ...(flags.logLevel !== undefined && { logLevel: flags.logLevel }),
  }, WARMUP_FLAGS);
}

/** A duration as people read it: 850ms, 42s, 3m05s, 1h02m. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${pad(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h${pad(Math.floor((seconds % 3600) / 60))}m`;
}

const rateOf = (progress: WarmupProgress) => `${formatByteSize(Math.round(progress.bytesPerSecond))}/s`;
const etaOf = (progress: WarmupProgress) => (progress.etaMs === undefined ? '?' : formatDuration(progress.etaMs));
const totalOf = (progress: WarmupProgress) => `${formatByteSize(progress.bytesListed)}${progress.listingComplete ? '' : '+'}`;

/** One line of progress, as printed every few seconds when stderr is not a terminal. */
export function progressLine(progress: WarmupProgress): string {
  const listing = progress.listingComplete ? '' : ' (still listing)';
  const failed = progress.failedBlocks > 0 ? `, ${progress.failedBlocks} blocks failed` : '';
  return (
    `warmed ${formatByteSize(progress.bytesDone)} of ${totalOf(progress)}${listing}, ` +
    `${progress.objectsDone}/${progress.objectsListed} files, ${rateOf(progress)}, ETA ${etaOf(progress)}${failed}`
  );
}

/**
 * Why the warm-up must not start with these cache servers, or undefined when it may: none listed (discovery found
 * none), none ready, or some not ready without --allow-partial. Each message names every server missing and why.
 */
export function cacheServersRefusal(report: CacheServersReport, allowPartial: boolean): string | undefined {
  if (report.listed === 0) {
    return "no cache server is listed: the cache's Kubernetes Service has no ready endpoint, or its EndpointSlices could not be read (rerun with --log-level info to see why)";
  }
  if (report.ready.length === 0) return `no cache server is ready (0 of ${report.listed}): ${describeUnready(report)}`;
  if (report.notReady.length === 0 || allowPartial) return undefined;
  // Why not warm the ready ones: each block's owner is picked on the ring of ready servers, so the missing
  // servers' share lands on the others and is no use once they are back, their blocks owned by them again, cold.
  return (
    `${report.notReady.length} of ${report.listed} cache servers are not ready (${describeUnready(report)}): a warm-up now would ` +
    "load their share of the blocks into the other servers, where readers stop looking once they are back; fix them, or pass --allow-partial to warm the ready ones anyway"
  );
}

/** The error of a warm-up whose source matched no object with bytes to warm (a mistyped prefix), or undefined. */
export function nothingMatched(summary: WarmupSummary, source: string, prefix: string): string | undefined {
  if (summary.objectsListed > 0 || summary.objectsSkipped > 0) return undefined;
  const under = prefix === '' ? 'in the bucket' : `under the key prefix "${prefix}"`;
  return `${source} matched no objects: check the prefix (keys are case-sensitive; nothing with bytes was found ${under})`;
}

/**
 * The summary table printed at the end, then the first failures. `cacheServers` says which listed servers the
 * warm-up reached (the blocks' owners) and why any other was left out.
 */
export function summaryLines(summary: WarmupSummary, source: string, cacheServers: CacheServersReport): string[] {
  const warm = summary.bytesFrom.ram + summary.bytesFrom.disk;
  const rows: Array<[string, string]> = [
    ['cache servers', describeCacheServers(cacheServers)],
    ['files', `${summary.objectsDone}${summary.objectsSkipped > 0 ? ` (${summary.objectsSkipped} skipped: no ETag, cannot be cached)` : ''}`],
    ['bytes', formatByteSize(summary.bytesDone)],
    ['blocks', String(summary.blocksDone)],
    ['from origin', formatByteSize(summary.bytesFrom.origin)],
    ['already warm', `${formatByteSize(warm)} (RAM ${formatByteSize(summary.bytesFrom.ram)}, disk ${formatByteSize(summary.bytesFrom.disk)})`],
    ['failed blocks', summary.failedBlocks > 0 ? `${summary.failedBlocks} (${formatByteSize(summary.bytesFailed)})` : '0'],
    ['duration', formatDuration(summary.elapsedMs)],
    ['rate', rateOf(summary)],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = [`warm-up of ${source}`, ...rows.map(([name, value]) => `  ${name.padEnd(width)}  ${value}`)];
  if (summary.failedBlocks > 0) {
    lines.push(`failures (${Math.min(summary.failures.length, FAILURES_SHOWN)} of ${summary.failedBlocks} shown):`);
    for (const failure of summary.failures.slice(0, FAILURES_SHOWN)) {
      lines.push(`  ${failure.key} block ${failure.index} at ${failure.owner}: ${failure.message}`);
    }
  }
  return lines;
}

/** Shows progress on stderr: a bar on a terminal, else a plain line every PLAIN_PROGRESS_INTERVAL_MS. */
interface ProgressDisplay {
  update(progress: WarmupProgress): void;
  stop(): void;
}

function barDisplay(stream: NodeJS.WriteStream): ProgressDisplay {
  const bar = new SingleBar({
    stream,
    format: 'warming [{bar}] {percentage}% | {done} of {size} | {files} files | {speed} | ETA {left}',
    barsize: 30,
    hideCursor: true,
    clearOnComplete: false,
    fps: 5,
  });
  let started = false;
  return {
    update(progress) {
      const payload = {
        done: formatByteSize(progress.bytesDone),
        size: totalOf(progress),
        files: `${progress.objectsDone}/${progress.objectsListed}`,
        speed: rateOf(progress),
        left: etaOf(progress),
      };
      const value = progress.bytesDone + progress.bytesFailed;
      // A total of 0 would show 100 % while the first page is still being listed.
      const total = Math.max(1, progress.bytesListed);
      if (!started) {
        bar.start(total, value, payload);
        started = true;
        return;
      }
      bar.setTotal(total);
      bar.update(value, payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

function plainDisplay(stream: NodeJS.WritableStream, now: () => number): ProgressDisplay {
  let lastPrinted = now();
  return {
    update(progress) {
      if (now() - lastPrinted < PLAIN_PROGRESS_INTERVAL_MS) return;
      lastPrinted = now();
      stream.write(`${progressLine(progress)}\n`);
    },
    stop() {},
  };
}

function flush(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}

/**
 * Warms the prefix through the ring and prints the summary. Steps: 1. connect to the cache (read the token, build
 * the ring and wait for its first probes); 2. say which listed servers are ready and why the others are not, and
 * stop unless all are (or --allow-partial and some are); 3. open the object store (AWS_* environment); 4. check
 * that the owners fill from the same endpoint as this process; 5. warm, showing progress; 6. print the summary;
 * throw if the source matched nothing or any block failed. Everything opened is closed, whatever happens;
 * SIGINT/SIGTERM stop the warm-up.
 */
async function runWarmup(config: WarmupConfig): Promise<void> {
  const logger = createLogger({ level: config.logLevel, name: 'granary-warmup' });
  const controller = new AbortController();
  const interrupt = (signal: NodeJS.Signals) => controller.abort(new Error(`warm-up interrupted by ${signal}`));
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  let cache: CacheConnection | undefined;
  let display: ProgressDisplay | undefined;
  let store: { close(): void } | undefined;
  try {
    // Loaded here: every granary process registers this command, and only a warm-up needs the cache client and the S3 SDK.
    const [{ connectToCache }, { warmPrefix }, { endpointFromEnv }, { openSource }] = await Promise.all([
      import('../cache/connection'), import('../cache/warmup'), import('../objectstore/s3'), import('../objectstore/source'),
    ]);
    cache = await connectToCache(config.cache, logger, { maxSocketsPerPeer: config.concurrency });
    const { client, membership } = cache;
    const servers = () => cacheServersReport(membership.readiness(), '--cache-token-file');
    const atStart = servers();
    const refusal = cacheServersRefusal(atStart, config.allowPartial);
    if (atStart.ready.length > 0) process.stderr.write(`cache servers: ${describeCacheServers(atStart)}\n`);
    if (refusal !== undefined) {
      if (config.json) process.stdout.write(`${JSON.stringify({ source: config.source, cacheServers: atStart, error: refusal })}\n`);
      throw new Error(refusal);
    }
    if (atStart.notReady.length > 0) {
      process.stderr.write(`warning: --allow-partial: warming the ${atStart.ready.length} ready cache servers only; the blocks they load for the ${atStart.notReady.length} missing are read from the object store again once those are back\n`);
    }
    const opened = openSource(config.source);
    store = opened.store;
    const endpoint = endpointIdentity(endpointFromEnv(process.env));
    const first = membership.picker().members[0];
    if (first !== undefined) {
      const info = await client.info(first.url, controller.signal);
      if (info.endpoint !== endpoint) {
        const name = (value: string) => value || 'the AWS default endpoint';
        throw new Error(
          `the cache servers fill from ${name(info.endpoint)} but this process reads ${name(endpoint)}: ` +
            'set AWS_ENDPOINT_URL to the cache servers\' endpoint so that both name blocks alike',
        );
      }
    }
    display = process.stderr.isTTY ? barDisplay(process.stderr) : plainDisplay(process.stderr, Date.now);
    const shown = display;
    const summary = await warmPrefix({
      store: opened.store,
      prefix: opened.prefix,
      endpoint,
      bucket: config.bucket,
      blockSize: config.cache.blockSize,
      picker: () => membership.picker(),
      load: (owner, ref, signal) => client.load(owner, ref, signal),
      concurrency: config.concurrency,
      signal: controller.signal,
      onProgress: (progress) => shown.update(progress),
    });
    display.stop();
    display = undefined;
    const atEnd = servers();
    if (config.json) process.stdout.write(`${JSON.stringify({ source: config.source, cacheServers: atEnd, ...summary })}\n`);
    else process.stdout.write(`${summaryLines(summary, config.source, atEnd).join('\n')}\n`);
    const empty = nothingMatched(summary, config.source, opened.prefix);
    if (empty !== undefined) throw new Error(empty);
    if (summary.failedBlocks > 0) {
      throw new Error(`${summary.failedBlocks} blocks could not be warmed (see the failures above); readers will fetch them from the object store`);
    }
  } finally {
    display?.stop();
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    cache?.close();
    store?.close();
    await flush(logger);
  }
}

/** Adds `granary warmup` to the program. */
export function register(program: Command): void {
  const command = program
    .command('warmup')
    .description(
      'Load every block of every object under s3://BUCKET/PREFIX into the cache server that owns it, before a scale-out. ' +
        'Endpoint and credentials from AWS_* environment variables (the same endpoint as the cache servers). ' +
        'Says on stderr which listed cache servers are ready and why the others are not, then shows progress; a summary on stdout. ' +
        'Exits 1 if a listed cache server is not ready (unless --allow-partial), if none is, if the source matched no object, ' +
        'or if any block could not be warmed.',
    )
    .argument('<source>', 's3://BUCKET/PREFIX')
    .option('--allow-partial', 'warm the ready cache servers even if some listed ones are not ready (warns instead of exiting 1)', false)
    .option('--concurrency <n>', `blocks loading at once (default: ${DEFAULT_WARMUP_CONCURRENCY})`, flagParser(wholeNumber))
    .option('--json', 'print the summary as one JSON line on stdout instead of a table', false)
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(LOG_LEVELS).default('warn'))
    .addOption(logFormatOption());
  addCacheClientOptions(command).action(async (source: string, flags: WarmupFlags) => {
    await runWarmup(parseWarmupFlags(source, flags));
  });
}
