import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import type { WarmupSummary } from '../cache/warmup';
import { formatDuration, parseWarmupFlags, progressLine, register, summaryLines } from './warmup';

const TOKEN = { cacheTokenFile: '/etc/granary/token' };

describe('parseWarmupFlags', () => {
  it('fills the defaults and puts the peers in canonical form', () => {
    expect(parseWarmupFlags('s3://models/llama/7b', { ...TOKEN, cachePeers: 'http://10.0.0.5:7070, http://10.0.0.6:7070/,http://10.0.0.5:7070' })).toEqual({
      source: 's3://models/llama/7b',
      bucket: 'models',
      prefix: 'llama/7b/',
      discovery: { kind: 'static', peers: ['http://10.0.0.5:7070', 'http://10.0.0.6:7070'] },
      tokenFile: '/etc/granary/token',
      concurrency: 16,
      blockSize: 4 * 1024 * 1024,
      json: false,
      logLevel: 'warn',
    });
  });

  it('takes a Kubernetes Service, a concurrency, a block size with a unit and --json', () => {
    const command = parseWarmupFlags('s3://models', {
      ...TOKEN,
      cacheKubernetesService: 'granary-cache',
      cacheKubernetesNamespace: 'granary',
      concurrency: '64',
      cacheBlockSize: '8MiB',
      json: true,
      logLevel: 'debug',
    });
    expect(command).toMatchObject({
      bucket: 'models',
      prefix: '',
      discovery: { kind: 'kubernetes', service: 'granary-cache', namespace: 'granary' },
      concurrency: 64,
      blockSize: 8 * 1024 * 1024,
      json: true,
      logLevel: 'debug',
    });
  });

  it('refuses a bad peer URL, naming it and the expected form', () => {
    expect(() => parseWarmupFlags('s3://models/m', { ...TOKEN, cachePeers: 'http://10.0.0.5:7070,cache-b' })).toThrow(/"cache-b".*http\(s\):\/\/HOST:PORT/);
    expect(() => parseWarmupFlags('s3://models/m', { ...TOKEN, cachePeers: 'http://10.0.0.5' })).toThrow(/has no port/);
    expect(() => parseWarmupFlags('s3://models/m', { ...TOKEN, cachePeers: ' , ' })).toThrow(/--cache-peers lists no cache server/);
  });

  it('wants exactly one of --cache-peers and --cache-kubernetes-service', () => {
    expect(() => parseWarmupFlags('s3://models/m', { ...TOKEN, cachePeers: 'http://10.0.0.5:7070', cacheKubernetesService: 'granary-cache' })).toThrow(
      /give --cache-peers or --cache-kubernetes-service, not both/,
    );
    expect(() => parseWarmupFlags('s3://models/m', TOKEN)).toThrow(/say where the cache servers are: --cache-peers .* or --cache-kubernetes-service/);
    expect(() => parseWarmupFlags('s3://models/m', { ...TOKEN, cacheKubernetesService: 'Granary_Cache' })).toThrow(/not a Service name/);
    expect(() => parseWarmupFlags('s3://models/m', { ...TOKEN, cachePeers: 'http://10.0.0.5:7070', cacheKubernetesNamespace: 'granary' })).toThrow(
      /--cache-kubernetes-namespace goes with --cache-kubernetes-service/,
    );
  });

  it('requires --cache-token-file', () => {
    expect(() => parseWarmupFlags('s3://models/m', { cachePeers: 'http://10.0.0.5:7070' })).toThrow(/--cache-token-file is required/);
    expect(() => parseWarmupFlags('s3://models/m', { cachePeers: 'http://10.0.0.5:7070', cacheTokenFile: ' ' })).toThrow(/--cache-token-file is required/);
  });

  it('refuses a local folder, and a malformed bucket', () => {
    const folder = mkdtempSync(path.join(tmpdir(), 'granary-warmup-'));
    expect(() => parseWarmupFlags(folder, { ...TOKEN, cachePeers: 'http://10.0.0.5:7070' })).toThrow(/is not an s3:\/\/ URL.*a local folder is never cached/);
    expect(() => parseWarmupFlags('s3://Models/m', { ...TOKEN, cachePeers: 'http://10.0.0.5:7070' })).toThrow(/"Models" .* is not a valid bucket name/);
  });

  it('refuses a concurrency or block size the servers cannot use', () => {
    const base = { ...TOKEN, cachePeers: 'http://10.0.0.5:7070' };
    expect(() => parseWarmupFlags('s3://models/m', { ...base, concurrency: '0' })).toThrow(/--concurrency must be a whole number from 1 to 1024, got "0"/);
    expect(() => parseWarmupFlags('s3://models/m', { ...base, concurrency: '2.5' })).toThrow(/--concurrency/);
    expect(() => parseWarmupFlags('s3://models/m', { ...base, cacheBlockSize: '4KiB' })).toThrow(/--cache-block-size must be from 64 KiB to 64 MiB/);
    expect(() => parseWarmupFlags('s3://models/m', { ...base, cacheBlockSize: 'big' })).toThrow(/"big" is not a size/);
  });

  it('lists every problem at once', () => {
    expect(() => parseWarmupFlags('./model', { concurrency: 'x' })).toThrow(/not an s3:\/\/ URL.*say where the cache servers are.*--cache-token-file is required.*--concurrency/);
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
  bytesBySource: { origin: 2 * 1024 ** 3, ram: 512 * 1024 ** 2, disk: 500 * 1024 ** 2 - 4 * 1024 ** 2 },
  blocksListed: 768,
  blocksDone: 767,
  failedBlocks: 1,
  elapsedMs: 95_000,
  bytesPerSecond: 32 * 1024 ** 2,
  etaMs: 0,
  failures: [{ key: 'llama/7b/shard-3', index: 17, owner: 'http://10.0.0.6:7070', message: 'cache server answered 503' }],
};

describe('warm-up output', () => {
  it('summarises files, bytes, sources, failures, duration and rate', () => {
    const lines = summaryLines(summary, 's3://models/llama/7b');
    expect(lines).toEqual([
      'warm-up of s3://models/llama/7b',
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
