// Workload: an inference scale-out reading one model through the cluster cache. Three cache servers (on
// 127.0.0.11-13, one per simulated node) and three mount processes read a 1 GiB object; a counting TCP
// relay in front of the S3 server measures, from outside granary, what was read from the object store.
// Then faults: a cache server killed in the middle of the reads, restarted from its disk, and hung.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { startCacheServer, type CacheServerProcess } from '../support/cache-server';
import { mountGranary, s3MountEnv, stopAllMounts, type GranaryMount } from '../support/mount';
import { createBucket, freePort, s3Client, testS3 } from '../support/s3-server';
import { startCountingRelay, type CountingRelay } from '../support/tcp-relay';
import { deleteBucket, makeTemp, MiB, removeTemp, run, uploadSeeded } from './helpers';

jest.setTimeout(600_000);

const GiB = 1024 * MiB;
const MODEL_SIZE = GiB;
const MODEL_KEY = 'models/llm/model.safetensors';
const NODES = ['127.0.0.11', '127.0.0.12', '127.0.0.13'];
const READERS = 8;
const TOKEN = 'scenario-cluster-token-0123456789';

describe('cluster cache: one bucket read for a scale-out, and reads that survive a cache server dying or hanging', () => {
  const server = testS3();
  let client: S3Client;
  let bucket: string;
  let base: string;
  let expected: string;
  let relay: CountingRelay;
  let tokenFile: string;
  let peers: string[];
  const caches: CacheServerProcess[] = [];
  const mounts: GranaryMount[] = [];
  let env: NodeJS.ProcessEnv;

  const startCache = (index: number) =>
    startCacheServer({
      host: NODES[index] ?? '',
      port: Number(new URL(peers[index] ?? '').port),
      ramBytes: '256MiB',
      diskDir: path.join(base, `cache-${index}`),
      diskBytes: '1GiB',
      peers,
      tokenFile,
      env,
    });
  const mount = async (name: string) => {
    const mountpoint = path.join(base, name);
    fs.mkdirSync(mountpoint);
    const mounted = await mountGranary({ source: `s3://${bucket}/models`, mountpoint, readOnly: true, env, args: ['--cache-peers', peers.join(','), '--cache-token-file', tokenFile] });
    mounts.push(mounted);
    return mounted;
  };
  /** sha256sum of the model through `mount`, in its own process (readers run in parallel). */
  const hashThrough = async (through: GranaryMount) => {
    const result = await run('sha256sum', [path.join(through.mountpoint, 'llm', 'model.safetensors')], { timeoutMs: 300_000 });
    if (result.code !== 0) throw new Error(`sha256sum through ${through.mountpoint} failed: ${result.stderr}\n${through.logTail()}`);
    return result.stdout.split(' ')[0];
  };
  const sum = async (name: string, labels?: string, of: CacheServerProcess[] = caches) => (await Promise.all(of.map((cache) => cache.metric(name, labels)))).reduce((a, b) => a + b, 0);

  beforeAll(async () => {
    client = s3Client(server);
    bucket = await createBucket(server, 'cluster-cache');
    base = makeTemp('cluster-cache');
    expected = await uploadSeeded(client, bucket, MODEL_KEY, 'cluster-cache/model', MODEL_SIZE);
    const s3 = new URL(server.endpoint);
    relay = await startCountingRelay({ host: s3.hostname, port: Number(s3.port) });
    env = { ...s3MountEnv(server), AWS_ENDPOINT_URL: relay.endpoint };
    tokenFile = path.join(base, 'token');
    fs.writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
    peers = await Promise.all(NODES.map(async (host) => `http://${host}:${await freePort()}`));
    for (let index = 0; index < NODES.length; index++) caches.push(await startCache(index));
    for (let index = 0; index < NODES.length; index++) await mount(`node-${index}`);
  });

  afterAll(async () => {
    await stopAllMounts();
    await Promise.all(caches.map((cache) => cache.stop()));
    await relay?.close();
    if (client && bucket) await deleteBucket(client, bucket);
    client?.destroy();
    removeTemp(base);
  });

  it('reads the bucket about once for 8 concurrent readers on 3 nodes, every reader getting the right bytes', async () => {
    const before = relay.downstreamBytes;
    const hashes = await Promise.all(Array.from({ length: READERS }, (_, reader) => hashThrough(mounts[reader % NODES.length] as GranaryMount)));
    const fromStore = relay.downstreamBytes - before;
    expect(hashes).toEqual(Array.from({ length: READERS }, () => expected));
    // Counted outside granary, headers and listings included.
    expect(fromStore).toBeLessThanOrEqual(1.05 * GiB);
    expect(fromStore).toBeGreaterThanOrEqual(MODEL_SIZE);
    // The cache servers filled the model once between them, and served it to the three mounts. That holds while
    // every mount sees the same ring: a member leaving a mount's ring sends its blocks to other owners, which fill
    // them again, so the ring changes are part of what is compared (and named when it fails).
    const ringChanges = mounts.flatMap((through) => through.log().split('\n').filter((line) => /left the ring/.test(line)));
    expect({ originBytes: await sum('granary_cache_origin_bytes_total'), ringChanges }).toEqual({ originBytes: MODEL_SIZE, ringChanges: [] });
    expect(await sum('granary_cache_served_bytes_total')).toBeGreaterThanOrEqual(NODES.length * MODEL_SIZE * 0.75);
    for (const cache of caches) expect(await cache.metric('granary_cache_origin_bytes_total')).toBeGreaterThan(0.2 * MODEL_SIZE);
  });

  it('completes every read with the right bytes when a cache server is killed in the middle of them', async () => {
    // Fresh mounts: nothing in their own RAM, every block comes from its owner.
    const fresh = await Promise.all(NODES.map((_, index) => mount(`node-${index}-again`)));
    const victim = caches[1] as CacheServerProcess;
    const servedBefore = await victim.metric('granary_cache_served_bytes_total');
    // The readers count as they finish: the kill must land while all of them still read.
    let finished = 0;
    const reads = Promise.all(Array.from({ length: READERS }, (_, reader) => hashThrough(fresh[reader % NODES.length] as GranaryMount).finally(() => finished++)));
    // Kill it once it is busy serving this round, long before the readers are done.
    const deadline = Date.now() + 60_000;
    let served = servedBefore;
    while (served < servedBefore + 64 * MiB && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      served = await victim.metric('granary_cache_served_bytes_total');
    }
    await victim.kill();
    expect(finished).toBe(0);
    expect(await reads).toEqual(Array.from({ length: READERS }, () => expected));
  });

  it('serves its disk blocks again after a restart, without reading the object store for them', async () => {
    const restarted = await startCache(1);
    caches[1] = restarted;
    const reader = await mount('node-1-after-restart');
    const before = relay.downstreamBytes;
    expect(await hashThrough(reader)).toBe(expected);
    expect(await restarted.metric('granary_cache_served_bytes_total', 'from="disk"')).toBeGreaterThan(0.2 * MODEL_SIZE);
    expect(await restarted.metric('granary_cache_origin_requests_total')).toBe(0);
    // Blocks another server filled while it was dead may be filled again by it; nothing of its own share is.
    expect(relay.downstreamBytes - before).toBeLessThan(0.05 * GiB);
  });

  it('completes reads with the right bytes when a cache server hangs (stopped, its connections open)', async () => {
    const hung = caches[0] as CacheServerProcess;
    const reader = await mount('node-2-during-hang');
    hung.child.kill('SIGSTOP');
    try {
      // Its owner requests get no answer: each times out (2 s for the headers) and is read from the
      // object store, and the mount drops the server from its ring at the first failure.
      expect(await hashThrough(reader)).toBe(expected);
    } finally {
      hung.child.kill('SIGCONT');
    }
    expect(reader.log()).toMatch(/reading from the object store instead/);
  });
});
