import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import type { WarmupSummary } from '../cache/warmup';
import { LOAD_TIMEOUT_MS, type WarmupConfig } from '../config/warmup';
import { PeerError } from '../cache/peer-client';
import { ProbeTimeout } from '../cache/membership/membership';
import { cacheServersReport, type CacheServersReport } from './cache-servers';
import { cacheServersRefusal, formatDuration, nothingMatched, parseWarmupFlags, progressLine, register, summaryLines, type WarmupFlags } from './warmup';

const TOKEN = ['--cache-token-file', '/etc/granary/token'];

/** `granary warmup ARGS` through the real flags (their parsers) and the validation, without running the warm-up. */
async function parse(args: string[]): Promise<WarmupConfig> {
  const program = new Command('granary').exitOverride().configureOutput({ writeErr: () => undefined });
  register(program);
  let parsed: WarmupConfig | undefined;
  program.commands.find((command) => command.name() === 'warmup')?.action((source: string, flags: WarmupFlags) => {
    parsed = parseWarmupFlags(source, flags);
  });
  await program.parseAsync(['warmup', ...args], { from: 'user' });
  if (parsed === undefined) throw new Error('the warmup action did not run');
  return parsed;
}

describe('parseWarmupFlags', () => {
  it('fills the defaults and puts the peers in canonical form', async () => {
    expect(await parse(['s3://models/llama/7b', ...TOKEN, '--cache-peers', 'http://10.0.0.5:7070, http://10.0.0.6:7070/,http://10.0.0.5:7070'])).toEqual({
      source: 's3://models/llama/7b',
      bucket: 'models',
      prefix: 'llama/7b/',
      cache: {
        peers: ['http://10.0.0.5:7070', 'http://10.0.0.6:7070'],
        tokenFile: '/etc/granary/token',
        blockSize: 4 * 1024 * 1024,
        headersTimeoutMs: LOAD_TIMEOUT_MS,
        requestTimeoutMs: LOAD_TIMEOUT_MS,
      },
      allowPartial: false,
      concurrency: 16,
      json: false,
      logLevel: 'warn',
    });
  });

  it('takes a Kubernetes Service, a concurrency, a block size with a unit and --json', async () => {
    const config = await parse([
      's3://models',
      ...TOKEN,
      '--cache-kubernetes-service', 'granary-cache',
      '--cache-kubernetes-namespace', 'granary',
      '--concurrency', '64',
      '--cache-block-size', '8MiB',
      '--json',
      '--allow-partial',
      '--log-level', 'debug',
    ]);
    expect(config).toMatchObject({
      bucket: 'models',
      prefix: '',
      cache: { peers: [], kubernetesService: 'granary-cache', kubernetesNamespace: 'granary', blockSize: 8 * 1024 * 1024 },
      concurrency: 64,
      allowPartial: true,
      json: true,
      logLevel: 'debug',
    });
  });

  it('refuses a bad peer URL, naming it and the expected form', async () => {
    await expect(parse(['s3://models/m', ...TOKEN, '--cache-peers', 'http://10.0.0.5:7070,cache-b'])).rejects.toThrow(/"cache-b".*http\(s\):\/\/HOST:PORT/);
    await expect(parse(['s3://models/m', ...TOKEN, '--cache-peers', 'http://10.0.0.5'])).rejects.toThrow(/has no port/);
    await expect(parse(['s3://models/m', ...TOKEN, '--cache-peers', ' , '])).rejects.toThrow(/--cache-peers lists no cache server/);
  });

  it('wants exactly one of --cache-peers and --cache-kubernetes-service', async () => {
    await expect(parse(['s3://models/m', ...TOKEN, '--cache-peers', 'http://10.0.0.5:7070', '--cache-kubernetes-service', 'granary-cache'])).rejects.toThrow(
      /give --cache-peers or --cache-kubernetes-service, not both/,
    );
    await expect(parse(['s3://models/m', ...TOKEN])).rejects.toThrow(/say where the cache servers are: --cache-peers .* or --cache-kubernetes-service/);
    await expect(parse(['s3://models/m', ...TOKEN, '--cache-kubernetes-service', 'Granary_Cache'])).rejects.toThrow(/not a Service name/);
    await expect(parse(['s3://models/m', ...TOKEN, '--cache-peers', 'http://10.0.0.5:7070', '--cache-kubernetes-namespace', 'granary'])).rejects.toThrow(
      /--cache-kubernetes-namespace goes with --cache-kubernetes-service/,
    );
  });

  it('requires --cache-token-file', async () => {
    await expect(parse(['s3://models/m', '--cache-peers', 'http://10.0.0.5:7070'])).rejects.toThrow(/--cache-token-file is required/);
    await expect(parse(['s3://models/m', '--cache-peers', 'http://10.0.0.5:7070', '--cache-token-file', ' '])).rejects.toThrow(/--cache-token-file is required/);
  });

  it('refuses a local folder, and a malformed bucket', async () => {
    const folder = mkdtempSync(path.join(tmpdir(), 'granary-warmup-'));
    await expect(parse([folder, ...TOKEN, '--cache-peers', 'http://10.0.0.5:7070'])).rejects.toThrow(/is not an s3:\/\/ URL.*a local folder is never cached/);
    await expect(parse(['s3://Models/m', ...TOKEN, '--cache-peers', 'http://10.0.0.5:7070'])).rejects.toThrow(/"Models" .* is not a valid bucket name/);
  });

  it('refuses a concurrency or block size the servers cannot use', async () => {
    const base = ['s3://models/m', ...TOKEN, '--cache-peers', 'http://10.0.0.5:7070'];
    await expect(parse([...base, '--concurrency', '0'])).rejects.toThrow(/--concurrency must be a whole number from 1 to 1024, got "0"/);
    await expect(parse([...base, '--concurrency', '2.5'])).rejects.toThrow(/--concurrency/);
    await expect(parse([...base, '--cache-block-size', '4KiB'])).rejects.toThrow(/--cache-block-size must be from 64 KiB to 64 MiB/);
    await expect(parse([...base, '--cache-block-size', 'big'])).rejects.toThrow(/"big" is not a size/);
  });

  it('lists every problem at once', async () => {
    await expect(parse(['./model', '--concurrency', '0'])).rejects.toThrow(/not an s3:\/\/ URL.*say where the cache servers are.*--cache-token-file is required.*--concurrency/);
  });
});

describe('granary warmup', () => {
  it('hands its flags to the validation', async () => {
    const program = new Command('granary').exitOverride();
    register(program);
    const run = program.parseAsync(['warmup', 's3://models/m', '--cache-peers', 'http://10.0.0.5:7070', '--cache-kubernetes-service', 'granary-cache', '--cache-token-file', '/t'], { from: 'user' });
    await expect(run).rejects.toThrow(/not both/);
  });
});

const summary: WarmupSummary = {
  objectsListed: 12,
  objectsSkipped: 1,
  objectsDone: 12,
  listingComplete: true,
  bytesListed: 3 * 1024 ** 3,
  bytesDone: 3 * 1024 ** 3 - 4 * 1024 ** 2,
  bytesFailed: 4 * 1024 ** 2,
  bytesFrom: { origin: 2 * 1024 ** 3, ram: 512 * 1024 ** 2, disk: 500 * 1024 ** 2 - 4 * 1024 ** 2 },
  blocksListed: 768,
  blocksDone: 767,
  failedBlocks: 1,
  elapsedMs: 95_000,
  bytesPerSecond: 32 * 1024 ** 2,
  etaMs: 0,
  failures: [{ key: 'llama/7b/shard-3', index: 17, owner: 'http://10.0.0.6:7070', message: 'cache server answered 503' }],
};

const A = 'http://10.0.0.5:7070';
const B = 'http://10.0.0.6:7070';
const C = 'http://10.0.0.7:7070';
const refused = new PeerError('Unavailable', `GET /v1/info from ${C} failed: connect ECONNREFUSED`, undefined, { connection: 'ConnectionRefused' });
const wrongToken = new PeerError('Unauthorized', `${A} answered 401: a valid cluster token is required`, 401);
/** Two of three listed servers ready, the third refusing connections. */
const twoOfThree: CacheServersReport = cacheServersReport([{ url: A, ready: true }, { url: B, ready: true }, { url: C, ready: false, failure: refused }], '--cache-token-file');

describe('which listed cache servers a warm-up goes on with', () => {
  it('goes on when every listed server is ready', () => {
    expect(cacheServersRefusal(cacheServersReport([{ url: A, ready: true }, { url: B, ready: true }], '--cache-token-file'), false)).toBeUndefined();
  });

  it('refuses a smaller ring, naming the missing server and why, unless --allow-partial', () => {
    expect(twoOfThree).toEqual({ listed: 3, ready: [A, B], notReady: [{ url: C, problem: 'ConnectionRefused', reason: 'connection refused' }] });
    expect(cacheServersRefusal(twoOfThree, false)).toMatch(
      new RegExp(`^1 of 3 cache servers are not ready \\(${C} not ready: connection refused\\): .*pass --allow-partial to warm the ready ones anyway$`),
    );
    expect(cacheServersRefusal(twoOfThree, true)).toBeUndefined();
  });

  it('refuses when none is ready, even with --allow-partial, naming each reason', () => {
    const none = cacheServersReport([{ url: A, ready: false, failure: wrongToken }, { url: B, ready: false, failure: new ProbeTimeout(2000) }], '--cache-token-file');
    for (const allowPartial of [false, true]) {
      expect(cacheServersRefusal(none, allowPartial)).toBe(
        `no cache server is ready (0 of 2): ${A} not ready: 401: the cache token was refused — check --cache-token-file; ${B} not ready: timeout: no answer within 2000 ms`,
      );
    }
  });

  it('refuses when discovery lists none', () => {
    expect(cacheServersRefusal(cacheServersReport([], '--cache-token-file'), true)).toMatch(/^no cache server is listed: the cache's Kubernetes Service has no ready endpoint/);
  });
});

describe('a source that matched nothing', () => {
  const nothing = { ...summary, objectsListed: 0, objectsSkipped: 0, objectsDone: 0, bytesListed: 0, bytesDone: 0, blocksDone: 0 };

  it('is an error naming the source and the key prefix', () => {
    expect(nothingMatched(nothing, 's3://models/llama/7B', 'llama/7B/')).toBe(
      's3://models/llama/7B matched no objects: check the prefix (keys are case-sensitive; nothing with bytes was found under the key prefix "llama/7B/")',
    );
  });

  it('is no error when something was listed, even if only skipped', () => {
    expect(nothingMatched(summary, 's3://models/llama/7b', 'llama/7b/')).toBeUndefined();
    expect(nothingMatched({ ...nothing, objectsSkipped: 1 }, 's3://models/llama/7b', 'llama/7b/')).toBeUndefined();
  });
});

describe('warm-up output', () => {
  it('summarises the cache servers, files, bytes, sources, failures, duration and rate', () => {
    const lines = summaryLines(summary, 's3://models/llama/7b', twoOfThree);
    expect(lines).toEqual([
      'warm-up of s3://models/llama/7b',
      `  cache servers  2 of 3 ready (${A}, ${B}); ${C} not ready: connection refused`,
      '  files          12 (1 skipped: no ETag, cannot be cached)',
      '  bytes          3 GiB',
      '  blocks         767',
      '  from origin    2 GiB',
      '  already warm   1008 MiB (RAM 512 MiB, disk 496 MiB)',
      '  failed blocks  1 (4 MiB)',
      '  duration       1m35s',
      '  rate           32 MiB/s',
      'failures (1 of 1 shown):',
      '  llama/7b/shard-3 block 17 at http://10.0.0.6:7070: cache server answered 503',
    ]);
  });

  it('prints a plain progress line, with no ETA while listing', () => {
    expect(progressLine({ ...summary, listingComplete: false, etaMs: undefined, objectsDone: 3, bytesDone: 1024 ** 3, failedBlocks: 0 })).toBe(
      'warmed 1 GiB of 3 GiB+ (still listing), 3/12 files, 32 MiB/s, ETA ?',
    );
    expect(progressLine({ ...summary, etaMs: 65_000 })).toMatch(/, ETA 1m05s, 1 blocks failed$/);
  });

  it('formats durations', () => {
    expect([formatDuration(850), formatDuration(42_400), formatDuration(185_000), formatDuration(3_720_000)]).toEqual(['850ms', '42s', '3m05s', '1h02m']);
  });
});
