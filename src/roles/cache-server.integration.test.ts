// The cache server against the real S3-compatible test server: token, fills, single-flight, tiers, restart,
// corruption, validation. The server runs in-process; its clients speak real HTTP.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { s3MountEnv } from '../../e2e/support/mount';
import { testStores } from '../../e2e/support/test-stores';
import { parseCacheServerConfig } from '../config/cache';
import { silentLogger } from '../log/logger';
import { blockId, type BlockRef } from '../cache/block';
import { PeerClient, PeerError } from '../cache/peer-client';
import { blockQuery, endpointIdentity, PATHS } from '../cache/protocol';
import { startCache, type RunningCache } from './cache-server';

const MiB = 1024 * 1024;
const BLOCK = 1 * MiB;
const TOKEN = 'integration-token-0123456789';

describe('cache server against the S3 test server', () => {
  const stores = testStores('cache-server');
  const base = fs.mkdtempSync(path.join(tmpdir(), 'granary-cache-server-'));
  const tokenFile = path.join(base, 'token');
  fs.writeFileSync(tokenFile, `${TOKEN}\n`);
  const diskDir = path.join(base, 'disk');
  const content = randomBytes(5 * BLOCK + 12345);
  const key = 'models/weights.bin';
  let etag = '';
  let cache: RunningCache | undefined;
  let url = '';
  const client = new PeerClient({ token: TOKEN });

  const start = async (diskBytes = 4 * BLOCK) => {
    const config = parseCacheServerConfig({ listen: '127.0.0.1:0', ramBytes: 2 * BLOCK, diskDir, diskBytes, diskFreeFloorBytes: 0, blockSize: BLOCK, tokenFile });
    cache = await startCache(config, { logger: silentLogger(), env: s3MountEnv(stores.server) });
    url = `http://${cache.address}`;
  };
  const stop = async () => {
    await cache?.stop();
    cache = undefined;
  };
  const ref = (index: number, overrides: Partial<BlockRef> = {}): BlockRef => ({
    endpoint: endpointIdentity(stores.server.endpoint),
    bucket: stores.bucket,
    key,
    etag,
    objectSize: content.length,
    index,
    blockSize: BLOCK,
    ...overrides,
  });
  const blockOf = (index: number) => ({ start: index * BLOCK, end: Math.min((index + 1) * BLOCK, content.length) });
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`${url}${PATHS.metrics}`)).text();
    return text
      .split('\n')
      .filter((line) => line.startsWith(name))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  };

  beforeAll(async () => {
    const store = stores.open();
    etag = (await store.put(key, content)).etag;
    await start();
  });
  afterAll(async () => {
    await stop();
    client.close();
    fs.rmSync(base, { recursive: true, force: true });
  });

  it('refuses every data path without the token, or with a wrong one, and sends no data', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: TOKEN }] as Array<Record<string, string>>) {
      const response = await fetch(`${url}${PATHS.block}?${blockQuery(ref(0), blockOf(0))}`, { headers });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/Bearer/);
      const body = await response.text();
      expect(body).toMatch(/cluster token is required/);
      expect(body.length).toBeLessThan(500);
    }
    for (const [method, pathname] of [['POST', PATHS.load], ['GET', PATHS.info], ['POST', PATHS.warmup]] as const) {
      expect((await fetch(`${url}${pathname}?${blockQuery(ref(0))}`, { method })).status).toBe(401);
    }
    const wrong = new PeerClient({ token: 'wrong-token-0123456789' });
    await expect(wrong.fetchBlock(url, ref(0), blockOf(0))).rejects.toMatchObject({ code: 'Unauthorized', status: 401 });
    wrong.close();
    expect(await metric('granary_cache_unauthorized_requests_total')).toBeGreaterThanOrEqual(7);
  });

  it('serves the probes and metrics without the token', async () => {
    expect((await fetch(`${url}${PATHS.healthz}`)).status).toBe(200);
    expect((await fetch(`${url}${PATHS.readyz}`)).status).toBe(200);
    const metrics = await (await fetch(`${url}${PATHS.metrics}`)).text();
    expect(metrics).toMatch(/granary_cache_capacity_bytes\{tier="disk"\} 4194304/);
  });

  it('fills a block with one origin GET however many readers ask at once, then serves it from RAM', async () => {
    const before = await metric('granary_cache_origin_requests_total');
    const reads = await Promise.all(Array.from({ length: 8 }, () => client.fetchBlock(url, ref(1), blockOf(1))));
    for (const read of reads) expect(read.data.equals(content.subarray(BLOCK, 2 * BLOCK))).toBe(true);
    expect(await metric('granary_cache_origin_requests_total')).toBe(before + 1);
    const again = await client.fetchBlock(url, ref(1), { start: BLOCK + 100, end: BLOCK + 200 });
    expect(again.servedFrom).toBe('ram');
    expect(again.data.equals(content.subarray(BLOCK + 100, BLOCK + 200))).toBe(true);
  });

  it('serves the short last block exactly', async () => {
    const last = await client.fetchBlock(url, ref(5), blockOf(5));
    expect(last.data.length).toBe(12345);
    expect(last.data.equals(content.subarray(5 * BLOCK))).toBe(true);
  });

  it('keeps its disk blocks across a restart and serves them without origin reads', async () => {
    await client.load(url, ref(2));
    await client.fetchBlock(url, ref(3), blockOf(3));
    await stop();
    await start();
    const before = await metric('granary_cache_origin_requests_total');
    for (const index of [1, 2, 3]) {
      const read = await client.fetchBlock(url, ref(index), blockOf(index));
      expect(read.servedFrom).toBe('disk');
      expect(read.data.equals(content.subarray(index * BLOCK, (index + 1) * BLOCK))).toBe(true);
    }
    expect(await metric('granary_cache_origin_requests_total')).toBe(before);
    expect(await client.load(url, ref(2))).toEqual({ servedFrom: 'disk', bytes: BLOCK });
  });

  it('detects a corrupt block on disk, drops it and fills it again', async () => {
    await client.load(url, ref(4));
    await stop();
    const file = path.join(diskDir, 'blocks', blockId(ref(4)).slice(0, 2), blockId(ref(4)));
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
    fs.writeFileSync(file, bytes);
    await start();
    const read = await client.fetchBlock(url, ref(4), blockOf(4));
    expect(read.servedFrom).toBe('origin');
    expect(createHash('sha256').update(read.data).digest('hex')).toBe(createHash('sha256').update(content.subarray(4 * BLOCK, 5 * BLOCK)).digest('hex'));
    expect(await metric('granary_cache_corrupt_blocks_total')).toBe(1);
  });

  it('never holds more than its disk cap, evicting the oldest blocks', async () => {
    for (let index = 0; index <= 5; index++) await client.load(url, ref(index));
    const used = await metric('granary_cache_used_bytes{tier="disk"}');
    expect(used).toBeLessThanOrEqual(4 * BLOCK);
    expect(await metric('granary_cache_evictions_total{tier="disk"}')).toBeGreaterThan(0);
    const files = fs.readdirSync(path.join(diskDir, 'blocks'), { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
    const bytesOnDisk = files.reduce((sum, entry) => sum + fs.statSync(path.join(entry.parentPath, entry.name)).size, 0);
    expect(bytesOnDisk).toBeLessThanOrEqual(4 * BLOCK + files.length * 64);
  });

  it('answers a changed object with 412 and a missing one with 404, without caching anything', async () => {
    await expect(client.fetchBlock(url, ref(0, { etag: '"not-the-etag"' }), blockOf(0))).rejects.toMatchObject({ code: 'ObjectChanged', status: 412 });
    await expect(client.fetchBlock(url, ref(0, { key: 'models/absent.bin' }), blockOf(0))).rejects.toMatchObject({ code: 'ObjectChanged', status: 404 });
  });

  it('refuses another endpoint (421), invalid queries (400) and a block past the end (416) with a message that says what to fix', async () => {
    const other = await client.fetchBlock(url, ref(0, { endpoint: 'http://elsewhere:9000' }), blockOf(0)).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(PeerError);
    expect(other).toMatchObject({ status: 421, code: 'Rejected' });
    expect((other as Error).message).toMatch(/same AWS_ENDPOINT_URL/);
    const bad = async (query: string) => {
      const response = await fetch(`${url}${PATHS.block}?${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: response.status, body: (await response.json()) as { error: { message: string } } };
    };
    const valid = new URLSearchParams(blockQuery(ref(0), blockOf(0)));
    const without = new URLSearchParams(valid);
    without.delete('etag');
    expect(await bad(without.toString())).toMatchObject({ status: 400, body: { error: { message: 'the query lacks "etag"' } } });
    const outside = new URLSearchParams(valid);
    outside.set('end', String(2 * BLOCK));
    expect((await bad(outside.toString())).body.error.message).toMatch(/"end" must be between/);
    const pastEnd = new URLSearchParams(valid);
    pastEnd.set('index', '9');
    expect(await bad(pastEnd.toString())).toMatchObject({ status: 416, body: { error: { message: expect.stringMatching(/"index" must be between 0 and 5/) } } });
    const wrongMethod = await fetch(`${url}${PATHS.block}?${valid.toString()}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(wrongMethod.status).toBe(405);
  });

  it('answers /v1/info with its capacity and endpoint', async () => {
    const info = await client.info(url);
    expect(info).toMatchObject({ ramBytes: 2 * BLOCK, diskBytes: 4 * BLOCK, capacityBytes: 6 * BLOCK, endpoint: endpointIdentity(stores.server.endpoint) });
  });

  it('does not leak the token in any answer', async () => {
    const response = await new Promise<string>((resolve, reject) => {
      http.get(`${url}${PATHS.info}`, { headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve(JSON.stringify(res.headers) + text));
      }).on('error', reject);
    });
    expect(response).not.toContain(TOKEN);
  });
});
