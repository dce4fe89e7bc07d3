// Attack: what a token holder can make a real `granary cache serve` process do with the bucket and key of a
// block request, against the real S3 server: name thousands of buckets that do not exist (each used to
// cost an object store client and its socket, for ever), a bucket outside --buckets, a NUL in the key, a
// block past the object's end. Every answer is the right status with a message; descriptors and memory stay
// bounded.
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { PATHS, blockQuery } from '../../src/cache/protocol';
import { openFileDescriptors, residentBytes, sampleUsage } from '../support/process-usage';
import { createBucket, s3Client, testS3 } from '../support/s3-server';
import { BLOCK, startCacheFixture, type CacheFixture } from './cache-fixture';
import { deleteBucket, MiB } from './helpers';

jest.setTimeout(300_000);

const ABSENT_BUCKETS = 5000;
const CONCURRENCY = 16;

function errorOf(body: string): { code: string; message: string } {
  return (JSON.parse(body) as { error: { code: string; message: string } }).error;
}

describe('a cache server asked for buckets and blocks that do not exist', () => {
  let fixture: CacheFixture;

  beforeAll(async () => {
    fixture = await startCacheFixture('cache-flood', { blocks: 2 });
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it(`answers ${ABSENT_BUCKETS} made-up buckets 404, its descriptors and memory bounded`, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    try {
      // A real read first: the real bucket's client is in the pool, the server warm.
      expect((await fixture.request(fixture.blockPath(fixture.ref(0)), { agent })).status).toBe(200);
      const baseline = { fds: openFileDescriptors(fixture.pid), rssBytes: residentBytes(fixture.pid) };
      const usage = sampleUsage(fixture.pid);
      const statuses = new Map<string, number>();
      const stem = `absent-${randomBytes(4).toString('hex')}`;
      let next = 0;
      let example = '';
      const started = Date.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < ABSENT_BUCKETS) {
            const bucket = `${stem}-${next++}`;
            const answer = await fixture.request(fixture.blockPath(fixture.ref(0, { bucket })), { agent });
            const key = `${answer.status} ${errorOf(answer.body).code}`;
            statuses.set(key, (statuses.get(key) ?? 0) + 1);
            example ||= errorOf(answer.body).message;
          }
        }),
      );
      const seconds = (Date.now() - started) / 1000;
      const peaks = usage.stop();
      const clients = await fixture.cache.metric('granary_cache_origin_clients');
      console.log(
        `${ABSENT_BUCKETS} absent buckets in ${seconds.toFixed(1)} s: ${JSON.stringify(Object.fromEntries(statuses))}; ` +
          `server fds ${baseline.fds} before, peak ${peaks.peakFds}; RSS ${(baseline.rssBytes / MiB).toFixed(1)} MiB before, peak ${(peaks.peakRssBytes / MiB).toFixed(1)} MiB; ` +
          `origin clients open after: ${clients}; e.g. "${example}"`,
      );
      expect(Object.fromEntries(statuses)).toEqual({ '404 NoSuchBucket': ABSENT_BUCKETS });
      expect(example).toMatch(/NoSuchBucket/);
      expect(peaks.peakFds).toBeLessThan(baseline.fds + 200);
      expect(peaks.peakRssBytes - baseline.rssBytes).toBeLessThan(100 * MiB);
      // Every made-up bucket gave its place back: only the real one's client is left.
      expect(clients).toBe(1);
      // The real bucket still reads right.
      const ref = fixture.ref(1);
      const range = fixture.rangeOf(ref);
      const read = await fixture.request(fixture.blockPath(ref), { agent });
      expect(read.status).toBe(200);
      expect(read.bytes.equals(fixture.content.subarray(range.start, range.end))).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('answers a NUL in the key 400, naming the field, without asking the object store', async () => {
    const before = await fixture.cache.metric('granary_cache_origin_requests_total');
    const answer = await fixture.request(fixture.blockPath(fixture.ref(0, { key: 'models/weights\u0000.bin' })));
    expect(answer.status).toBe(400);
    expect(errorOf(answer.body)).toEqual({ code: 'InvalidArgument', message: '"key" holds the control character U+0000 at position 14: no object store names anything with it' });
    expect(await fixture.cache.metric('granary_cache_origin_requests_total')).toBe(before);
  });

  it('answers a block past the end of the object 416, whether the query says so or only the object store does', async () => {
    const pastEnd = await fixture.request(`${PATHS.block}?${blockQuery(fixture.ref(3), { start: 3 * BLOCK, end: 3 * BLOCK + 10 })}`);
    expect(pastEnd.status).toBe(416);
    expect(errorOf(pastEnd.body)).toMatchObject({ code: 'BlockPastEnd', message: expect.stringMatching(/"index" must be between 0 and 2, got 3: block 3 lies past the end/) });
    // A query claiming the object is larger than it is: block 3 exists by the claim, the object store refuses its range.
    const claimed = fixture.ref(3, { objectSize: 4 * BLOCK });
    const byOrigin = await fixture.request(fixture.blockPath(claimed));
    expect(byOrigin.status).toBe(416);
    expect(errorOf(byOrigin.body)).toMatchObject({ code: 'BlockPastEnd', message: expect.stringMatching(/InvalidRange/) });
  });
});

describe('a cache server restricted to its buckets (--buckets)', () => {
  let fixture: CacheFixture;

  beforeAll(async () => {
    fixture = await startCacheFixture('cache-buckets', { blocks: 1, args: (bucket) => ['--buckets', `${bucket},another-served-bucket`] });
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it('serves its buckets and answers any other 403 naming --buckets, on every data path', async () => {
    const ref = fixture.ref(0);
    const served = await fixture.request(fixture.blockPath(ref));
    expect(served.status).toBe(200);
    const before = await fixture.cache.metric('granary_cache_origin_requests_total');
    const other = fixture.ref(0, { bucket: 'someone-elses-bucket' });
    for (const [pathAndQuery, method, body] of [
      [fixture.blockPath(other), 'GET', undefined],
      [`${PATHS.load}?${blockQuery(other)}`, 'POST', undefined],
      [PATHS.warmup, 'POST', JSON.stringify({ source: 's3://someone-elses-bucket/models' })],
    ] as const) {
      const answer = await fixture.request(pathAndQuery, { method, ...(body !== undefined && { body }) });
      expect({ path: pathAndQuery.split('?')[0], status: answer.status }).toEqual({ path: pathAndQuery.split('?')[0], status: 403 });
      expect(errorOf(answer.body)).toEqual({
        code: 'BucketNotServed',
        message: `this cache serves only the buckets ${fixture.bucket}, another-served-bucket (--buckets, chart value cache.buckets), not "someone-elses-bucket": add it there, or read it from the object store directly`,
      });
    }
    expect(await fixture.cache.metric('granary_cache_origin_requests_total')).toBe(before);
  });
});

describe('a cache server reading more real buckets than it keeps clients for (--origin-clients)', () => {
  const KEPT = 4;
  const BUCKETS = 40;
  let fixture: CacheFixture;
  const client = s3Client(testS3());
  const buckets: string[] = [];

  beforeAll(async () => {
    fixture = await startCacheFixture('cache-clients', { blocks: 1, args: ['--origin-clients', String(KEPT)] });
    for (let index = 0; index < BUCKETS; index++) {
      const bucket = await createBucket(testS3(), `cache-clients-${index}`);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: fixture.key, Body: fixture.content }));
      buckets.push(bucket);
    }
  });
  afterAll(async () => {
    await fixture?.close();
    for (const bucket of buckets) await deleteBucket(client, bucket);
    client.destroy();
  });

  it('keeps at most that many clients open, closing the sockets of those it drops, and reads every bucket right', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await fixture.request(fixture.blockPath(fixture.ref(0)), { agent })).status).toBe(200);
      const baseline = openFileDescriptors(fixture.pid);
      const usage = sampleUsage(fixture.pid, 20);
      for (const bucket of buckets) {
        const ref = fixture.ref(0, { bucket });
        const range = fixture.rangeOf(ref);
        const answer = await fixture.request(fixture.blockPath(ref), { agent });
        expect({ bucket, status: answer.status }).toEqual({ bucket, status: 200 });
        expect(answer.bytes.equals(fixture.content.subarray(range.start, range.end))).toBe(true);
      }
      const { peakFds } = usage.stop();
      const clients = await fixture.cache.metric('granary_cache_origin_clients');
      console.log(`${BUCKETS} real buckets with --origin-clients ${KEPT}: server fds ${baseline} before, peak ${peakFds}; origin clients open after: ${clients}`);
      expect(clients).toBe(KEPT);
      // Each client kept holds its keep-alive socket to the object store; a dropped one's socket is closed.
      expect(peakFds).toBeLessThan(baseline + KEPT + 12);
    } finally {
      agent.destroy();
    }
  });
});
