// `granary cache serve` (the cache DaemonSet's process) and `granary cache status`: parse flags, build the
// config, call in.
import { Command, Option } from 'commander';
import { CACHE_SERVER_LIMITS, parseCacheServerConfig } from '../config/cache';
import { LOG_LEVELS } from '../config/log-levels';
import { formatByteSize, parseByteSize } from '../config/size';
import { parsePeerList } from '../cache/membership/static';
import { peerProblem } from '../cache/peer-problem';
import { readTokenFile } from '../cache/token';
import { createLogger } from '../log/logger';
import type { OptionFlags } from '../config/parse';
import { flagParser, wholeNumber } from './cache-flags';
import { logFormatOption } from './log-flags';

/** The flag of each option of `granary cache serve`, for the configuration's messages. */
const SERVE_FLAGS: OptionFlags = {
  listen: '--listen',
  tokenFile: '--token-file',
  logLevel: '--log-level',
  ramBytes: '--ram-bytes',
  diskDir: '--disk-dir',
  diskBytes: '--disk-bytes',
  diskFreeFloorBytes: '--disk-free-floor',
  blockSize: '--block-size',
  buckets: '--buckets',
  originClients: '--origin-clients',
  headersTimeoutMs: '--headers-timeout',
  idleTimeoutMs: '--idle-timeout',
  maxConnections: '--max-connections',
  maxConnectionsPerAddress: '--max-connections-per-address',
  's3.listen': '--s3-listen',
  's3.keysFile': '--s3-keys-file',
  's3.region': '--s3-region',
  's3.virtualHostSuffixes': '--s3-virtual-host',
  's3.readaheadBlocks': '--s3-readahead',
  's3.versionTtlMs': '--s3-version-ttl',
  's3.tlsCertFile': '--s3-tls-cert',
  's3.tlsKeyFile': '--s3-tls-key',
  'discovery.peers': '--peers',
  'discovery.kubernetesService': '--kubernetes-service',
  'discovery.kubernetesNamespace': '--kubernetes-namespace',
};

/** The flags of `granary cache serve` as commander parses them. */
interface ServeFlags {
  listen: string;
  ramBytes?: number;
  diskDir?: string;
  diskBytes?: number;
  diskFreeFloor?: number;
  blockSize?: number;
  peers?: string[];
  kubernetesService?: string;
  kubernetesNamespace?: string;
  tokenFile: string;
  buckets?: string[];
  originClients?: number;
  headersTimeout?: number;
  idleTimeout?: number;
  maxConnections?: number;
  maxConnectionsPerAddress?: number;
  logLevel: (typeof LOG_LEVELS)[number];
  s3Listen?: string;
  s3KeysFile?: string;
  s3Region?: string;
  s3VirtualHost?: string[];
  s3Readahead?: number;
  s3VersionTtl?: number;
  s3TlsCert?: string;
  s3TlsKey?: string;
}

/** Collects a repeatable flag's values. */
function repeated(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function bucketList(value: string): string[] {
  return value.split(',').map((name) => name.trim()).filter((name) => name !== '');
}

/** Adds `granary cache serve` and `granary cache status` to the program. */
export function register(program: Command): void {
  const cache = program.command('cache').description('The cluster cache: serve it (one server per node) or ask it how it is doing');
  cache
    .command('serve')
    .description(
      'Serve the block cache (RAM tier, optional disk tier) to mounts and peers until SIGTERM/SIGINT. The object store ' +
        'endpoint and credentials come from the AWS_* environment variables. /healthz, /readyz and /metrics need no token.',
    )
    .option('--listen <host:port>', 'address to listen on', '0.0.0.0:7070')
    .option('--ram-bytes <size>', 'bytes of blocks kept in RAM, e.g. 8GiB (default: 1GiB)', flagParser(parseByteSize))
    .option('--disk-dir <dir>', 'directory of the disk tier (NVMe); none = RAM only')
    .option('--disk-bytes <size>', 'bytes of blocks kept on disk, e.g. 500GiB (required with --disk-dir)', flagParser(parseByteSize))
    .option('--disk-free-floor <size>', 'free space the disk tier always leaves on its filesystem (default: 5GiB)', flagParser(parseByteSize))
    .option('--block-size <size>', 'block size, the same as the mounts use (default: 4MiB)', flagParser(parseByteSize))
    .option('--peers <urls>', 'every cache server, this one included, comma-separated base URLs (http://host:7070,...)', flagParser(parsePeerList))
    .option('--kubernetes-service <name>', "the cache's headless Service: find the peers from its EndpointSlices (instead of --peers)")
    .option('--kubernetes-namespace <namespace>', "the Service's namespace (default: POD_NAMESPACE, else the pod's own)")
    .requiredOption('--token-file <file>', 'file holding the cluster token (the mounted Secret)')
    .option('--buckets <names>', 'serve only these buckets, comma-separated; others answer 403 (default: any bucket the credentials can read)', bucketList)
    .option('--origin-clients <n>', `object store clients (one per bucket) kept open, least recently used closed first (default: ${CACHE_SERVER_LIMITS.originClients})`, wholeNumber)
    .option('--headers-timeout <ms>', `time a client has to send a request's headers before it is answered 408 and closed (default: ${CACHE_SERVER_LIMITS.headersTimeoutMs})`, wholeNumber)
    .option('--idle-timeout <ms>', `time a keep-alive connection may sit idle between requests (default: ${CACHE_SERVER_LIMITS.idleTimeoutMs})`, wholeNumber)
    .option('--max-connections <n>', `open connections in all; the excess is closed at accept (default: ${CACHE_SERVER_LIMITS.maxConnections}, lowered to fit the open file limit)`, wholeNumber)
    .option('--max-connections-per-address <n>', `open connections from one source address; the excess is closed at accept (default: ${CACHE_SERVER_LIMITS.maxConnectionsPerAddress})`, wholeNumber)
    .option('--s3-listen <host:port>', 'serve a read-only S3 API (GetObject, HeadObject, ListObjects) through the cache on this address (default: off)')
    .option('--s3-keys-file <file>', 'the S3 access keys file (JSON from a Secret: keys with their grants); required with --s3-listen')
    .option('--s3-region <region>', 'the region the S3 API answers GetBucketLocation with (default: AWS_REGION, else us-east-1)')
    .option('--s3-virtual-host <suffix>', 'a host suffix for virtual-hosted-style S3 requests (BUCKET.SUFFIX), repeatable; path style always works', repeated)
    .option('--s3-readahead <blocks>', 'blocks of an object fetched ahead of the one the S3 API is sending (default: 4)', wholeNumber)
    .option('--s3-tls-cert <file>', "serve the S3 API over HTTPS with this certificate chain (PEM, a kubernetes.io/tls Secret's tls.crt), re-read when it changes; with --s3-tls-key (default: plain HTTP)")
    .option('--s3-tls-key <file>', "the S3 API certificate's private key (PEM, tls.key)")
    .option('--s3-version-ttl <ms>', "how long an object's version (the origin's HEAD) answers the S3 reads that follow it; 0: a HEAD per read (default: 1000)", wholeNumber)
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .addOption(logFormatOption())
    .action(async (flags: ServeFlags) => {
      if (flags.s3Listen === undefined && (flags.s3KeysFile ?? flags.s3Region ?? flags.s3VirtualHost ?? flags.s3Readahead ?? flags.s3VersionTtl ?? flags.s3TlsCert ?? flags.s3TlsKey) !== undefined) {
        throw new Error('--s3-keys-file, --s3-region, --s3-virtual-host, --s3-readahead, --s3-version-ttl, --s3-tls-cert and --s3-tls-key configure the S3 API: give --s3-listen HOST:PORT too');
      }
      const config = parseCacheServerConfig({
        listen: flags.listen,
        tokenFile: flags.tokenFile,
        logLevel: flags.logLevel,
        ...(flags.ramBytes !== undefined && { ramBytes: flags.ramBytes }),
        ...(flags.diskDir !== undefined && { diskDir: flags.diskDir }),
        ...(flags.diskBytes !== undefined && { diskBytes: flags.diskBytes }),
        ...(flags.diskFreeFloor !== undefined && { diskFreeFloorBytes: flags.diskFreeFloor }),
        ...(flags.blockSize !== undefined && { blockSize: flags.blockSize }),
        ...(flags.buckets !== undefined && { buckets: flags.buckets }),
        ...(flags.originClients !== undefined && { originClients: flags.originClients }),
        ...(flags.headersTimeout !== undefined && { headersTimeoutMs: flags.headersTimeout }),
        ...(flags.idleTimeout !== undefined && { idleTimeoutMs: flags.idleTimeout }),
        ...(flags.maxConnections !== undefined && { maxConnections: flags.maxConnections }),
        ...(flags.maxConnectionsPerAddress !== undefined && { maxConnectionsPerAddress: flags.maxConnectionsPerAddress }),
        ...(flags.s3Listen !== undefined && {
          s3: {
            listen: flags.s3Listen,
            keysFile: flags.s3KeysFile ?? '',
            region: flags.s3Region ?? process.env.AWS_REGION ?? 'us-east-1',
            virtualHostSuffixes: flags.s3VirtualHost ?? [],
            ...(flags.s3Readahead !== undefined && { readaheadBlocks: flags.s3Readahead }),
            ...(flags.s3VersionTtl !== undefined && { versionTtlMs: flags.s3VersionTtl }),
            ...(flags.s3TlsCert !== undefined && { tlsCertFile: flags.s3TlsCert }),
            ...(flags.s3TlsKey !== undefined && { tlsKeyFile: flags.s3TlsKey }),
          },
        }),
        discovery: {
          peers: flags.peers ?? [],
          ...(flags.kubernetesService !== undefined && { kubernetesService: flags.kubernetesService }),
          ...(flags.kubernetesNamespace !== undefined && { kubernetesNamespace: flags.kubernetesNamespace }),
        },
      }, SERVE_FLAGS);
      const logger = createLogger({ level: config.logLevel, name: 'granary-cache' });
      const { startCache } = await import('../roles/cache-server');
      const running = await startCache(config, { logger });
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'stopping the cache server');
          void running.stop().then(resolve, (error: unknown) => {
            logger.error({ err: error }, 'stopping the cache server failed');
            resolve();
          });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    });

  cache
    .command('status')
    .description('Ask each cache server for its capacity and version; exits 1 if any is unreachable')
    .requiredOption('--peers <urls>', 'cache servers, comma-separated base URLs', flagParser(parsePeerList))
    .requiredOption('--token-file <file>', 'file holding the cluster token')
    .action(async (flags: { peers: string[]; tokenFile: string }) => {
      const { PeerClient } = await import('../cache/peer-client');
      const client = new PeerClient({ token: await readTokenFile(flags.tokenFile) });
      let failed = 0;
      for (const peer of flags.peers) {
        try {
          const info = await client.info(peer);
          process.stdout.write(`${peer}  up  ram ${formatByteSize(info.ramBytes)}  disk ${formatByteSize(info.diskBytes)}  endpoint ${info.endpoint || 'aws'}  version ${info.version}\n`);
        } catch (error) {
          failed++;
          process.stdout.write(`${peer}  DOWN  ${peerProblem(error, '--token-file').reason}\n`);
        }
      }
      client.close();
      if (failed > 0) process.exitCode = 1;
    });
}
