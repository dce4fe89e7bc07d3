// Workload: an operator warms a model prefix before a scale-out, with `granary warmup` and through a cache
// server's POST /v1/warmup. Two cache servers (127.0.0.11-12) fill from the real S3 server; the readers that
// follow read no byte of the prefix from the object store, and warming it again reads none either.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { builtCli } from '../support/built-cli';
import { startCacheServer, type CacheServerProcess } from '../support/cache-server';
import { mountGranary, s3MountEnv, stopAllMounts } from '../support/mount';
import { createBucket, freePort, s3Client, testS3 } from '../support/s3-server';
import { deleteBucket, makeTemp, MiB, removeTemp, run, seededBytes, sha256 } from './helpers';

jest.setTimeout(300_000);

const NODES = ['127.0.0.11', '127.0.0.12'];
const TOKEN = 'scenario-warmup-token-0123456789';
/** Shards of a model: a few sizes, one a whole number of blocks, one under a block. */
const SHARDS = [
  { name: 'model-00001.safetensors', size: 9 * MiB + 17 },
  { name: 'model-00002.safetensors', size: 8 * MiB },
  { name: 'config.json', size: 2345 },
  { name: 'tokenizer/tokenizer.json', size: 3 * MiB + 1 },
];

interface Summary {
  objectsDone: number;
  bytesDone: number;
  failedBlocks: number;
  bytesFrom: { origin: number; ram: number; disk: number };
}

describe('warm-up: a prefix loaded into its owners before the readers come', () => {
  const server = testS3();
  let client: S3Client;
  let bucket: string;
  let base: string;
  let tokenFile: string;
  let peers: string[];
  const caches: CacheServerProcess[] = [];
  const total = SHARDS.reduce((sum, shard) => sum + shard.size, 0);
  const env = () => ({ PATH: process.env.PATH, HOME: process.env.HOME, ...s3MountEnv(server) });
  const warmup = (source: string, ...flags: string[]) =>
    run(process.execPath, [builtCli(), 'warmup', source, '--cache-peers', peers.join(','), '--cache-token-file', tokenFile, '--json', ...flags], { timeoutMs: 120_000, env: env() });
  const originBytes = async () => (await Promise.all(caches.map((cache) => cache.metric('granary_cache_origin_bytes_total')))).reduce((a, b) => a + b, 0);

  beforeAll(async () => {
    client = s3Client(server);
    bucket = await createBucket(server, 'warmup');
    base = makeTemp('warmup');
    tokenFile = path.join(base, 'token');
    fs.writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
    for (const shard of SHARDS) await client.send(new PutObjectCommand({ Bucket: bucket, Key: `models/m1/${shard.name}`, Body: seededBytes(shard.name, 0, shard.size) }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'models/m1/empty-dir/', Body: Buffer.alloc(0) }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'models/m2/weights.bin', Body: seededBytes('m2', 0, 5 * MiB) }));
    peers = await Promise.all(NODES.map(async (host) => `http://${host}:${await freePort()}`));
    for (const [index, host] of NODES.entries()) {
      caches.push(await startCacheServer({ host, port: Number(new URL(peers[index] ?? '').port), ramBytes: '64MiB', diskDir: path.join(base, `cache-${index}`), diskBytes: '256MiB', peers, tokenFile, env: s3MountEnv(server) }));
    }
  });

  afterAll(async () => {
    await stopAllMounts();
    await Promise.all(caches.map((cache) => cache.stop()));
    if (client && bucket) await deleteBucket(client, bucket);
    client?.destroy();
    removeTemp(base);
  });

  it('loads every block of every object under the prefix once, then costs no origin reads when run again', async () => {
    const first = await warmup(`s3://${bucket}/models/m1`);
    expect(first.code).toBe(0);
    const summary = JSON.parse(first.stdout) as Summary;
    expect(summary).toMatchObject({ objectsDone: SHARDS.length, bytesDone: total, failedBlocks: 0, bytesFrom: { origin: total, ram: 0, disk: 0 } });
    expect(await originBytes()).toBe(total);
    // Both owners took a share, on disk: a warm-up leaves RAM to the blocks readers use (README, Warm-up).
    for (const cache of caches) {
      expect(await cache.metric('granary_cache_blocks', 'tier="disk"')).toBeGreaterThan(0);
      expect(await cache.metric('granary_cache_blocks', 'tier="ram"')).toBe(0);
    }

    const again = JSON.parse((await warmup(`s3://${bucket}/models/m1`)).stdout) as Summary;
    expect(again.bytesFrom.origin).toBe(0);
    expect(again.bytesFrom.disk + again.bytesFrom.ram).toBe(total);
    expect(await originBytes()).toBe(total);
  });

  it('lets readers through a mount read the warmed prefix without one origin read by the cache', async () => {
    const mountpoint = path.join(base, 'mnt');
    fs.mkdirSync(mountpoint);
    const mount = await mountGranary({ source: `s3://${bucket}/models/m1`, mountpoint, readOnly: true, env: s3MountEnv(server), args: ['--cache-peers', peers.join(','), '--cache-token-file', tokenFile] });
    for (const shard of SHARDS) expect(sha256(fs.readFileSync(path.join(mount.mountpoint, shard.name)))).toBe(sha256(seededBytes(shard.name, 0, shard.size)));
    expect(await originBytes()).toBe(total);
    const fromDisk = (await Promise.all(caches.map((cache) => cache.metric('granary_cache_served_bytes_total', 'from="disk"')))).reduce((a, b) => a + b, 0);
    expect(fromDisk).toBe(total);
    await mount.stop();
  });

  it('warms through a cache server with POST /v1/warmup, streaming progress as NDJSON', async () => {
    const url = `${peers[0]}/v1/warmup`;
    const refused = await fetch(url, { method: 'POST', body: JSON.stringify({ source: `s3://${bucket}/models/m2` }) });
    expect(refused.status).toBe(401);
    const bad = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{"source": "models/m2"}' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/s3:\/\/BUCKET\/PREFIX/);
    const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ source: `s3://${bucket}/models/m2` }) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    const lines = (await response.text()).trim().split('\n').map((line) => JSON.parse(line) as Summary);
    expect(lines.at(-1)).toMatchObject({ objectsDone: 1, bytesDone: 5 * MiB, failedBlocks: 0, bytesFrom: { origin: 5 * MiB } });
    expect(await originBytes()).toBe(total + 5 * MiB);
  });

  it('reports each cache server with granary cache status, and a down one with exit code 1', async () => {
    const up = await run(process.execPath, [builtCli(), 'cache', 'status', '--peers', peers.join(','), '--token-file', tokenFile], { timeoutMs: 30_000, env: env() });
    expect(up.code).toBe(0);
    expect(up.stdout.trim().split('\n')).toEqual(peers.map((peer) => expect.stringMatching(new RegExp(`^${peer}  up  ram 64 MiB  disk 256 MiB`))));
    const down = await run(process.execPath, [builtCli(), 'cache', 'status', '--peers', `${peers[0]},http://127.0.0.1:9`, '--token-file', tokenFile], { timeoutMs: 30_000, env: env() });
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/http:\/\/127\.0\.0\.1:9 {2}DOWN/);
  });

  it('says a port that answers S3 XML is not a granary cache server, in one line, with exit code 1', async () => {
    const s3 = new URL(server.endpoint).origin;
    const result = await run(process.execPath, [builtCli(), 'cache', 'status', '--peers', `${peers[0]},${s3}`, '--token-file', tokenFile], { timeoutMs: 30_000, env: env() });
    expect(result.code).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^${peers[0]}  up  `)), expect.stringMatching(new RegExp(`^${s3}  DOWN  not a granary cache server \\(answered \\d{3}[^)]*\\)$`))]);
    expect(result.stdout).not.toContain('<');
  });

  it('fails with a clear message when the token is wrong or no cache server answers', async () => {
    const wrongToken = path.join(base, 'wrong-token');
    fs.writeFileSync(wrongToken, 'not-the-cluster-token-000000');
    const result = await run(process.execPath, [builtCli(), 'warmup', `s3://${bucket}/models/m1`, '--cache-peers', peers.join(','), '--cache-token-file', wrongToken], { timeoutMs: 60_000, env: env() });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no cache server is ready/);
    for (const peer of peers) expect(result.stderr).toContain(`${peer} not ready: 401: the cache token was refused — check --cache-token-file`);
    expect(result.stderr).not.toContain('not-the-cluster-token');
  });

  it('refuses to warm a smaller ring when a listed cache server is not ready, naming it and why, unless --allow-partial', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const s3 = new URL(server.endpoint).origin;
    const listed = [...peers, closed, s3];
    const warm = (...flags: string[]) =>
      run(process.execPath, [builtCli(), 'warmup', `s3://${bucket}/models/m2`, '--cache-peers', listed.join(','), '--cache-token-file', tokenFile, '--json', ...flags], { timeoutMs: 120_000, env: env() });
    const origin = await originBytes();

    const refused = await warm();
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ cacheServers: { listed: listed.length, ready: peers }, error: expect.stringContaining('--allow-partial') });
    expect(refused.stderr).toContain(`cache servers: 2 of 4 ready (${peers.join(', ')})`);
    expect(refused.stderr).toContain(`${closed} not ready: connection refused`);
    expect(refused.stderr).toMatch(new RegExp(`${s3} not ready: not a granary cache server \\(answered \\d{3}`));
    expect(refused.stderr).toContain('--allow-partial');
    expect(await originBytes()).toBe(origin);

    const partial = await warm('--allow-partial');
    expect(partial.code).toBe(0);
    expect(partial.stderr).toContain(`cache servers: 2 of 4 ready (${peers.join(', ')})`);
    const summary = JSON.parse(partial.stdout) as Summary & { cacheServers: unknown };
    expect(summary.cacheServers).toEqual({
      listed: listed.length,
      ready: peers,
      notReady: [
        { url: closed, problem: 'ConnectionRefused', reason: 'connection refused' },
        { url: s3, problem: 'NotGranary', reason: expect.stringMatching(/^not a granary cache server \(answered \d{3}/) },
      ],
    });
    expect(summary).toMatchObject({ objectsDone: 1, failedBlocks: 0 });

    const table = await run(process.execPath, [builtCli(), 'warmup', `s3://${bucket}/models/m2`, '--cache-peers', listed.join(','), '--cache-token-file', tokenFile, '--allow-partial'], { timeoutMs: 120_000, env: env() });
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(`  cache servers  2 of 4 ready (${peers.join(', ')}); ${closed} not ready: connection refused; ${s3} not ready: not a granary cache server`);
  });

  it('fails, naming the source, when the prefix matches no object (a typo)', async () => {
    const result = await warmup(`s3://${bucket}/models/m1-typo`);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`s3://${bucket}/models/m1-typo matched no objects: check the prefix`);
  });
});
