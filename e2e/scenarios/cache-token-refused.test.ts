// A mount given the wrong cluster token: the cache server refuses it (401). The mount reads the right bytes from
// the object store, says so once (one warning naming the 401 and the server, however many blocks it reads and
// probes it makes) and counts the refusals in its metrics.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { readMountMetrics } from '../../src/csi/node-metrics';
import { startCacheServer, type CacheServerProcess } from '../support/cache-server';
import { mountGranary, s3MountEnv, stopAllMounts, withMountLog, type GranaryMount } from '../support/mount';
import { createBucket, freePort, s3Client, testS3 } from '../support/s3-server';
import { deleteBucket, makeTemp, MiB, removeTemp } from './helpers';

jest.setTimeout(120_000);

const valueOf = (text: string, name: string): number | undefined => {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
};

describe('a mount whose cache token the cache server refuses', () => {
  const server = testS3();
  let client: S3Client;
  let bucket: string;
  let base: string;
  let cache: CacheServerProcess;
  let mount: GranaryMount | undefined;
  const content = randomBytes(9 * MiB + 123);

  beforeAll(async () => {
    client = s3Client(server);
    bucket = await createBucket(server, 'token-refused');
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'data/weights.bin', Body: content }));
    base = makeTemp('token-refused');
    const serverToken = path.join(base, 'server-token');
    fs.writeFileSync(serverToken, `right-token-${randomBytes(8).toString('hex')}`, { mode: 0o600 });
    const port = await freePort();
    cache = await startCacheServer({ host: '127.0.0.1', port, ramBytes: '64MiB', diskDir: path.join(base, 'disk'), diskBytes: '64MiB', peers: [`http://127.0.0.1:${port}`], tokenFile: serverToken, env: s3MountEnv(server) });
  });

  afterAll(async () => {
    await stopAllMounts();
    await cache?.stop();
    if (client && bucket) await deleteBucket(client, bucket);
    client?.destroy();
    removeTemp(base);
  });

  it('reads the right bytes from the object store, warns once naming the 401 and the server, and counts the refusals', withMountLog(() => mount, async () => {
    const wrongToken = path.join(base, 'mount-token');
    fs.writeFileSync(wrongToken, `wrong-token-${randomBytes(8).toString('hex')}`, { mode: 0o600 });
    const metricsSocket = path.join(base, 'mount-metrics.sock');
    const mountpoint = path.join(base, 'mnt');
    fs.mkdirSync(mountpoint);
    mount = await mountGranary({
      source: `s3://${bucket}/data`,
      mountpoint,
      readOnly: true,
      env: s3MountEnv(server),
      args: ['--cache-peers', cache.url, '--cache-token-file', wrongToken, '--cache-metrics-socket', metricsSocket],
    });
    expect(fs.readFileSync(path.join(mount.mountpoint, 'weights.bin')).equals(content)).toBe(true);

    const refusals = mount.log().split('\n').filter((line) => line.includes('refused the cache token'));
    expect(refusals).toHaveLength(1);
    expect(JSON.parse(refusals[0] ?? '{}')).toMatchObject({ level: 40, peer: cache.url, msg: expect.stringContaining(`the cache server ${cache.url} refused the cache token (401)`) });
    // The mount's first probe was refused before it read anything; the block reads went to the object store.
    expect(valueOf(await readMountMetrics(metricsSocket, 10_000), 'granary_mount_cache_token_refusals_total')).toBeGreaterThanOrEqual(1);
    expect(await cache.metric('granary_cache_origin_bytes_total')).toBe(0);
  }));
});
