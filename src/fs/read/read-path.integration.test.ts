// The read path against the real S3-compatible server, without FUSE: what a mount's handles read is
// byte-exact, and the GETs behind it are few and large when streaming, small and unprefetched when seeking.
// The measurements behind the defaults (random-read unit, readahead window) are in bench/read-path.ts.
import { createHash, randomBytes } from 'node:crypto';
import { silentLogger } from '../../log/logger';
import { createBucket, testS3, type TestS3 } from '../../../e2e/support/s3-server';
import { S3Store } from '../../objectstore/s3';
import { readPathSchema, type ReadPathConfigInput } from '../../config/read-path';
import type { ReadHandle } from './read-handle';
import { ReadPath } from './read-path';
import { countingGets } from '../../../e2e/support/counting-store';

jest.setTimeout(300_000);

const MiB = 1024 * 1024;
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');


/** Reads [start, end) of a handle in `step` requests, as the kernel would, and returns the bytes. */
async function readRange(handle: ReadHandle, start: number, end: number, step: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(end - start);
  for (let offset = start; offset < end; offset += step) {
    const part = await handle.read(offset, Math.min(step, end - offset));
    part.copy(out, offset - start);
  }
  return out;
}

/** The sha256 of [start, end) of a handle read in `step` requests, without holding the bytes. */
async function hashRange(handle: ReadHandle, start: number, end: number, step: number): Promise<string> {
  const hash = createHash('sha256');
  for (let offset = start; offset < end; offset += step) hash.update(await handle.read(offset, Math.min(step, end - offset)));
  return hash.digest('hex');
}

/** Deterministic pseudo-random offsets. */
function offsets(count: number, limit: number, seed: number): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return Math.floor((state / 2 ** 31) * limit);
  });
}

describe('read path against the real S3 server', () => {
  const OBJECT_SIZE = 256 * MiB;
  let server: TestS3;
  let s3: S3Store;
  let data: Buffer;
  let etag: string;
  const paths: ReadPath[] = [];

  const open = (config: ReadPathConfigInput = {}) => {
    const counted = countingGets(s3);
    const path = new ReadPath({ store: counted.store, config: readPathSchema.parse(config), logger: silentLogger() });
    paths.push(path);
    return { path, gets: counted.gets, handle: () => path.open({ key: 'data/blob.bin', etag, size: OBJECT_SIZE }) };
  };

  beforeAll(async () => {
    server = testS3();
    const bucket = await createBucket(server, 'readpath');
    s3 = new S3Store({ bucket, endpoint: server.endpoint, region: server.region, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } }, {});
    data = randomBytes(OBJECT_SIZE);
    etag = (await s3.put('data/blob.bin', data)).etag;
  });
  afterAll(() => {
    paths.forEach((path) => path.close());
    s3?.close();
  });

  it('4 concurrent sequential readers of 256 MiB: exact bytes, each 4 MiB block fetched about once, memory bounded', async () => {
    const { path, gets, handle } = open({ cacheBytes: 64 * MiB });
    const results = await Promise.all(Array.from({ length: 4 }, () => hashRange(handle(), 0, OBJECT_SIZE, MiB)));
    for (const result of results) expect(result).toBe(sha(data));
    const blocks = OBJECT_SIZE / (4 * MiB);
    expect(gets.length).toBeGreaterThanOrEqual(blocks);
    expect(gets.length).toBeLessThanOrEqual(blocks * 1.25);
    for (const range of gets) expect(range.end - range.start).toBe(4 * MiB);
    expect(path.cache.cachedBytes).toBeLessThanOrEqual(64 * MiB);
    expect(path.cache.stats.readaheadFetches).toBeGreaterThan(blocks / 2);
    process.stdout.write(`4 streams: ${gets.length} GETs, ${JSON.stringify(path.cache.stats)}\n`);
  });

  it('4 sequential readers at different offsets of one file (one quarter each)', async () => {
    const { path, gets, handle } = open({ cacheBytes: 32 * MiB });
    const quarter = OBJECT_SIZE / 4;
    const parts = await Promise.all([0, 1, 2, 3].map((i) => readRange(handle(), i * quarter, (i + 1) * quarter, 128 * 1024)));
    expect(sha(Buffer.concat(parts))).toBe(sha(data));
    // 64 blocks, plus the small GETs of the 3 streams that start mid-file before they count as sequential
    // (4 MiB in 256 KiB units: 16 each), plus readahead past the end of a quarter another stream already read.
    const small = gets.filter((range) => range.end - range.start < 4 * MiB).length;
    process.stdout.write(`quarters: ${gets.length} GETs (${small} small), ${JSON.stringify(path.cache.stats)}\n`);
    expect(small).toBeLessThanOrEqual(3 * 16);
    expect(gets.length - small).toBeLessThanOrEqual((OBJECT_SIZE / (4 * MiB)) * 1.25);
  });

  it('random 1 MiB reads: exact bytes, small GETs, no readahead', async () => {
    const { path, gets, handle } = open();
    const reader = handle();
    const starts = offsets(100, OBJECT_SIZE - MiB, 7);
    for (const start of starts) {
      const read = await readRange(reader, start, start + MiB, MiB);
      expect(read.equals(data.subarray(start, start + MiB))).toBe(true);
    }
    expect(path.cache.stats.readaheadFetches).toBe(0);
    const unit = readPathSchema.parse({}).randomReadUnitBytes;
    const fetched = gets.reduce((total, range) => total + range.end - range.start, 0);
    expect(gets.length).toBeLessThanOrEqual(starts.length * 2); // two when a read crosses a block boundary
    expect(fetched).toBeLessThanOrEqual(starts.length * (MiB + 2 * unit));
  });
});
