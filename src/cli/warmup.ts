// `granary warmup s3://BUCKET/PREFIX`: parse flags, reach the cache ring, call warmPrefix, show progress on
// stderr and the summary on stdout.
import { SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import { MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, DEFAULT_BLOCK_SIZE } from '../blocks/block-size';
import { openMembership } from '../cache/discovery';
import type { Membership } from '../cache/membership/membership';
import { parsePeerList } from '../cache/membership/static';
import { PeerClient } from '../cache/peer-client';
import { endpointIdentity } from '../cache/protocol';
import { readTokenFile } from '../cache/token';
import { DEFAULT_WARMUP_CONCURRENCY, warmPrefix, type WarmupProgress, type WarmupSummary } from '../cache/warmup';
import { LOG_LEVELS } from '../config/log-levels';
import { formatByteSize, parseByteSize } from '../config/size';
import { createLogger, type Logger } from '../log/logger';
import { endpointFromEnv } from '../objectstore/s3';
import { openSource, parseS3Url } from '../objectstore/source';

/** Most blocks loading at once that --concurrency accepts. */
export const MAX_WARMUP_CONCURRENCY = 1024;

/**
 * How long one load may take, headers included (ms): 2 minutes. A load answers only once the owner has the
 * block, which may mean a fill from the object store queued behind others, so the mount's 2 s would be far too short.
 */
export const LOAD_TIMEOUT_MS = 120_000;

/** How often the progress line is printed when stderr is not a terminal (ms). */
export const PLAIN_PROGRESS_INTERVAL_MS = 5000;

/** How many failures the summary prints. */
const FAILURES_SHOWN = 10;

type LogLevel = (typeof LOG_LEVELS)[number];

/** The flags of `granary warmup` as commander hands them over (raw strings, validated by parseWarmupFlags). */
export interface WarmupFlags {
  cachePeers?: string;
  cacheKubernetesService?: string;
  cacheKubernetesNamespace?: string;
  cacheTokenFile?: string;
  concurrency?: string;
  cacheBlockSize?: string;
  json?: boolean;
  logLevel?: string;
}

/** Where the cache servers are: a fixed list, or the endpoints of a Kubernetes Service. */
export type CacheDiscovery = { kind: 'static'; peers: string[] } | { kind: 'kubernetes'; service: string; namespace?: string };

/** A validated `granary warmup` invocation. */
export interface WarmupCommand {
  /** The s3:// URL as given. */
  source: string;
  bucket: string;
  /** Empty, or ending with `/`. */
  prefix: string;
  discovery: CacheDiscovery;
  tokenFile: string;
  concurrency: number;
  blockSize: number;
  json: boolean;
  logLevel: LogLevel;
}

/**
 * Validates the source and flags of `granary warmup`; throws one Error listing every problem, each with the
 * fix. The source must be s3://BUCKET[/PREFIX]: a local folder is not in any cache.
 */
export function parseWarmupFlags(source: string, flags: WarmupFlags): WarmupCommand {
  const problems: string[] = [];
  const attempt = <T>(parse: () => T): T | undefined => {
    try {
      return parse();
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
      return undefined;
    }
  };

  let location: { bucket: string; prefix: string } | undefined;
  if (!/^s3:\/\//i.test(source.trim())) {
    problems.push(`"${source}" is not an s3:// URL: give s3://BUCKET/PREFIX (warm-up loads objects of a bucket into the cluster cache; a local folder is never cached)`);
  } else {
    location = attempt(() => parseS3Url(source.trim()));
  }

  const peers = flags.cachePeers === undefined ? undefined : attempt(() => parsePeerList(flags.cachePeers ?? ''));
  const service = flags.cacheKubernetesService?.trim();
  if (flags.cachePeers !== undefined && service !== undefined) {
    problems.push('give --cache-peers or --cache-kubernetes-service, not both');
  } else if (flags.cachePeers === undefined && service === undefined) {
    problems.push('say where the cache servers are: --cache-peers http://HOST:PORT,... or --cache-kubernetes-service NAME');
  } else if (peers !== undefined && peers.length === 0) {
    problems.push('--cache-peers lists no cache server: give http://HOST:PORT,...');
  }
  if (service !== undefined && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(service)) {
    problems.push(`--cache-kubernetes-service "${service}" is not a Service name (lower-case letters, digits and hyphens)`);
  }
  if (flags.cacheKubernetesNamespace !== undefined && service === undefined) {
    problems.push('--cache-kubernetes-namespace goes with --cache-kubernetes-service');
  }

  const tokenFile = flags.cacheTokenFile?.trim() ?? '';
  if (tokenFile === '') problems.push('--cache-token-file is required: the cache servers answer only requests that carry the cluster token');

  let concurrency = DEFAULT_WARMUP_CONCURRENCY;
  if (flags.concurrency !== undefined) {
    concurrency = Number(flags.concurrency);
    if (!/^\d+$/.test(flags.concurrency.trim()) || concurrency < 1 || concurrency > MAX_WARMUP_CONCURRENCY) {
      problems.push(`--concurrency must be a whole number from 1 to ${MAX_WARMUP_CONCURRENCY}, got "${flags.concurrency}"`);
    }
  }

  let blockSize: number | undefined = DEFAULT_BLOCK_SIZE;
  if (flags.cacheBlockSize !== undefined) {
    blockSize = attempt(() => parseByteSize(flags.cacheBlockSize ?? ''));
    if (blockSize !== undefined && (blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE)) {
      problems.push(`--cache-block-size must be from ${formatByteSize(MIN_BLOCK_SIZE)} to ${formatByteSize(MAX_BLOCK_SIZE)} (the cache servers' block size), got ${flags.cacheBlockSize}`);
    }
  }

  const logLevel = flags.logLevel ?? 'warn';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) problems.push(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);

  if (problems.length > 0 || location === undefined || blockSize === undefined) {
    throw new Error(`cannot warm up: ${problems.join('; ')}`);
  }
  const discovery: CacheDiscovery =
    service !== undefined
      ? { kind: 'kubernetes', service, ...(flags.cacheKubernetesNamespace !== undefined && { namespace: flags.cacheKubernetesNamespace.trim() }) }
      : { kind: 'static', peers: peers ?? [] };
  return { source: source.trim(), ...location, discovery, tokenFile, concurrency, blockSize, json: flags.json ?? false, logLevel: logLevel as LogLevel };
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

/** The summary table printed at the end, then the first failures. */
export function summaryLines(summary: WarmupSummary, source: string): string[] {
  const warm = summary.bytesBySource.ram + summary.bytesBySource.disk;
  const rows: Array<[string, string]> = [
    ['files', `${summary.objectsDone}${summary.objectsSkipped > 0 ? ` (${summary.objectsSkipped} skipped: no ETag, cannot be cached)` : ''}`],
    ['bytes', formatByteSize(summary.bytesDone)],
    ['blocks', String(summary.blocksDone)],
    ['from origin', formatByteSize(summary.bytesBySource.origin)],
    ['already warm', `${formatByteSize(warm)} (RAM ${formatByteSize(summary.bytesBySource.ram)}, disk ${formatByteSize(summary.bytesBySource.disk)})`],
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
 * Warms the prefix through the ring and prints the summary. Steps: 1. read the token; 2. open the object store
 * (AWS_* environment); 3. build the ring and wait for its first probes; 4. check that the owners fill from the
 * same endpoint as this process; 5. warm, showing progress; 6. print the summary; throw if any block failed.
 * Everything opened is closed, whatever happens; SIGINT/SIGTERM stop the warm-up.
 */
async function runWarmup(command: WarmupCommand): Promise<void> {
  const logger = createLogger({ level: command.logLevel, name: 'granary-warmup' });
  const token = await readTokenFile(command.tokenFile);
  const { store, prefix } = openSource(command.source);
  const endpoint = endpointIdentity(endpointFromEnv(process.env));
  const client = new PeerClient({ token, headersTimeoutMs: LOAD_TIMEOUT_MS, requestTimeoutMs: LOAD_TIMEOUT_MS, maxSocketsPerPeer: command.concurrency });
  const controller = new AbortController();
  const interrupt = (signal: NodeJS.Signals) => controller.abort(new Error(`warm-up interrupted by ${signal}`));
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  let membership: Membership | undefined;
  let display: ProgressDisplay | undefined;
  try {
    const { discovery } = command;
    membership = await openMembership(
      discovery.kind === 'static' ? { peers: discovery.peers } : { peers: [], kubernetesService: discovery.service, kubernetesNamespace: discovery.namespace },
      (url, signal) => client.info(url, signal),
      logger,
    );
    if (membership === undefined) throw new Error('say where the cache servers are: --cache-peers or --cache-kubernetes-service');
    await membership.ready();
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
    const ring = membership;
    display = process.stderr.isTTY ? barDisplay(process.stderr) : plainDisplay(process.stderr, Date.now);
    const shown = display;
    const summary = await warmPrefix({
      store,
      prefix,
      endpoint,
      bucket: command.bucket,
      blockSize: command.blockSize,
      picker: () => ring.picker(),
      load: (owner, ref, signal) => client.load(owner, ref, signal),
      concurrency: command.concurrency,
      signal: controller.signal,
      onProgress: (progress) => shown.update(progress),
    });
    display.stop();
    display = undefined;
    if (command.json) process.stdout.write(`${JSON.stringify({ source: command.source, ...summary })}\n`);
    else process.stdout.write(`${summaryLines(summary, command.source).join('\n')}\n`);
    if (summary.failedBlocks > 0) {
      throw new Error(`${summary.failedBlocks} blocks could not be warmed (see the failures above); readers will fetch them from the object store`);
    }
  } finally {
    display?.stop();
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    membership?.close();
    client.close();
    store.close();
    await flush(logger);
  }
}

/** Adds `granary warmup` to the program. */
export function register(program: Command): void {
  program
    .command('warmup')
    .description(
      'Load every block of every object under s3://BUCKET/PREFIX into the cache server that owns it, before a scale-out. ' +
        'Endpoint and credentials from AWS_* environment variables (the same endpoint as the cache servers). ' +
        'Progress on stderr, a summary on stdout; exits 1 if any block could not be warmed.',
    )
    .argument('<source>', 's3://BUCKET/PREFIX')
    .option('--cache-peers <urls>', 'cache servers, comma-separated base URLs (http://HOST:PORT,...)')
    .option('--cache-kubernetes-service <name>', "the cache's headless Service: find the cache servers from its EndpointSlices")
    .option('--cache-kubernetes-namespace <namespace>', "the Service's namespace (default: POD_NAMESPACE, else the pod's own)")
    .option('--cache-token-file <file>', 'file holding the cluster token (required)')
    .option('--concurrency <n>', `blocks loading at once (default ${DEFAULT_WARMUP_CONCURRENCY})`)
    .option('--cache-block-size <size>', "the cache servers' block size (default 4MiB)")
    .option('--json', 'print the summary as one JSON line on stdout instead of a table', false)
    .addOption(new Option('--log-level <level>', 'log level of the JSON log on stderr').choices(LOG_LEVELS).default('warn'))
    .action(async (source: string, flags: WarmupFlags) => {
      await runWarmup(parseWarmupFlags(source, flags));
    });
}
