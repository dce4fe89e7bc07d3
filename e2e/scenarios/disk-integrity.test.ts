// Fault: block files on a cache server's disk are swapped, copied over one another and renamed to another
// block's name while the server is down (a bad restore, a careless operator, a buggy migration). A real
// `granary cache serve` (127.0.0.21), its disk filled by `granary warmup` from the real S3 server, is
// stopped, tampered with and started again on the same disk; a real `granary mount` reading through it
// gets every object's exact bytes, and the server counts each tampered block it met as corrupt, once.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_BLOCK_SIZE } from '../../src/blocks/block-size';
import { blockId } from '../../src/cache/block';
import { endpointIdentity } from '../../src/cache/protocol';
import { builtCli } from '../support/built-cli';
import { startCacheServer, type CacheServerProcess } from '../support/cache-server';
import { mountGranary, s3MountEnv, stopAllMounts, withMountLog, type GranaryMount } from '../support/mount';
import { createBucket, freePort, s3Client, testS3 } from '../support/s3-server';
import { deleteBucket, makeTemp, MiB, objectSha256, removeTemp, run, seededBytes, sha256 } from './helpers';

jest.setTimeout(300_000);

const HOST = '127.0.0.21';
const TOKEN = 'scenario-disk-integrity-token-0123456789';
const PREFIX = 'shards';
/** Objects of several sizes: whole blocks, a short last block, one under a block. */
const OBJECTS = {
  a: { key: `${PREFIX}/a.bin`, size: 12 * MiB },
  b: { key: `${PREFIX}/b.bin`, size: 9 * MiB + 100 },
  c: { key: `${PREFIX}/c.bin`, size: 8 * MiB },
  d: { key: `${PREFIX}/d.bin`, size: MiB },
  e: { key: `${PREFIX}/e.bin`, size: 5 * MiB },
} as const;
type Name = keyof typeof OBJECTS;

/** A line of the cache server's JSON log. */
type LogLine = Record<string, unknown>;

describe('disk integrity: a cache server never serves one block\'s file as another block', () => {
  const server = testS3();
  let client: S3Client;
  let bucket: string;
  let base: string;
  let diskDir: string;
  let tokenFile: string;
  let peer: string;
  let cache: CacheServerProcess | undefined;
  let mount: GranaryMount | undefined;
  const etags = new Map<Name, string>();

  const start = () =>
    startCacheServer({ host: HOST, port: Number(new URL(peer).port), ramBytes: '64MiB', diskDir, diskBytes: '256MiB', peers: [peer], tokenFile, env: s3MountEnv(server) });
  /** The disk file of block `index` of object `name`, named by the id the server gives it. */
  const fileOf = (name: Name, index: number): string => {
    const { key, size } = OBJECTS[name];
    const id = blockId({ endpoint: endpointIdentity(server.endpoint), bucket, key, etag: etags.get(name) ?? '', objectSize: size, index, blockSize: DEFAULT_BLOCK_SIZE });
    return path.join(diskDir, 'blocks', id.slice(0, 2), id);
  };
  const mountThroughCache = async (name: string): Promise<GranaryMount> => {
    const mountpoint = path.join(base, name);
    fs.mkdirSync(mountpoint);
    return mountGranary({ source: `s3://${bucket}/${PREFIX}`, mountpoint, readOnly: true, env: s3MountEnv(server), args: ['--cache-peers', peer, '--cache-token-file', tokenFile] });
  };
  /** Reads `names` through the mount; each must hash as the object in the bucket does. */
  const expectExactReads = async (through: GranaryMount, names: readonly Name[]): Promise<void> => {
    for (const name of names) {
      const inBucket = await objectSha256(client, bucket, OBJECTS[name].key);
      expect({ name, sha256: sha256(fs.readFileSync(path.join(through.mountpoint, path.basename(OBJECTS[name].key)))) }).toEqual({ name, sha256: inBucket.sha256 });
    }
  };
  const corruptWarnings = (): LogLine[] =>
    (cache?.log() ?? '')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine)
      .filter((line) => line.msg === 'dropped a corrupt block from the disk tier; it will be fetched again');

  beforeAll(async () => {
    client = s3Client(server);
    bucket = await createBucket(server, 'disk-integrity');
    base = makeTemp('disk-integrity');
    diskDir = path.join(base, 'cache');
    tokenFile = path.join(base, 'token');
    fs.writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
    for (const [name, { key, size }] of Object.entries(OBJECTS) as [Name, (typeof OBJECTS)[Name]][]) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: seededBytes(`disk-integrity/${name}`, 0, size) }));
      // Unquoted, as granary's object store client gives it (and block ids are made with it).
      etags.set(name, ((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag ?? '').replace(/^"|"$/g, ''));
    }
    peer = `http://${HOST}:${await freePort()}`;
    cache = await start();
  });

  afterAll(async () => {
    await stopAllMounts();
    await cache?.stop();
    if (client && bucket) await deleteBucket(client, bucket);
    client?.destroy();
    removeTemp(base);
  });

  it('fills its disk tier with every block of every object from the object store', async () => {
    const total = Object.values(OBJECTS).reduce((sum, { size }) => sum + size, 0);
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...s3MountEnv(server) };
    const warmup = await run(process.execPath, [builtCli(), 'warmup', `s3://${bucket}/${PREFIX}`, '--cache-peers', peer, '--cache-token-file', tokenFile, '--json'], { timeoutMs: 120_000, env });
    expect(warmup.code).toBe(0);
    expect(JSON.parse(warmup.stdout)).toMatchObject({ objectsDone: 5, bytesDone: total, failedBlocks: 0, bytesFrom: { origin: total } });
    await cache?.stop();
    // The files the tampering below moves are where the block ids say.
    for (const [name, index] of [['a', 0], ['a', 2], ['b', 0], ['c', 1], ['d', 0], ['e', 0], ['e', 1]] as const) expect(fs.existsSync(fileOf(name, index))).toBe(true);
  });

  it('reads every object exactly through a mount after its block files were swapped, copied over and renamed, counting each tampered block once', async () => {
    // Swapped: block 0 of a and block 1 of c (both whole blocks).
    const aside = `${fileOf('a', 0)}.aside`;
    fs.renameSync(fileOf('a', 0), aside);
    fs.renameSync(fileOf('c', 1), fileOf('a', 0));
    fs.renameSync(aside, fileOf('c', 1));
    // Copied: block 0 of b over block 0 of e (b's stays sound).
    fs.copyFileSync(fileOf('b', 0), fileOf('e', 0));
    // Renamed: block 1 of e (1 MiB) to the name of block 0 of d (1 MiB); e's block 1 is then missing, not corrupt.
    fs.renameSync(fileOf('e', 1), fileOf('d', 0));
    const tampered = [fileOf('a', 0), fileOf('c', 1), fileOf('e', 0), fileOf('d', 0)];

    cache = await start();
    mount = await mountThroughCache('mnt');
    await withMountLog(() => mount, async () => {
      // b holds only sound blocks (its block 0 was copied, not changed): nothing is counted for it.
      await expectExactReads(mount as GranaryMount, ['b']);
      expect(await cache?.metric('granary_cache_corrupt_blocks_total')).toBe(0);
      expect(await cache?.metric('granary_cache_origin_requests_total')).toBe(0);

      await expectExactReads(mount as GranaryMount, ['a', 'c', 'd', 'e']);
      expect(await cache?.metric('granary_cache_corrupt_blocks_total')).toBe(tampered.length);
      // The four tampered blocks and the missing one came from the object store again; every other block from disk.
      expect(await cache?.metric('granary_cache_origin_requests_total')).toBe(tampered.length + 1);
      expect(corruptWarnings().map((line) => line.file).sort()).toEqual([...tampered].sort());
      for (const line of corruptWarnings()) expect(line.problem).toMatch(/^the file holds block [0-9a-f]{40}-\d+, not [0-9a-f]{40}-\d+$/);
    })();
  });

  it('reads them all exactly again from a fresh mount, counting nothing more', async () => {
    await mount?.stop();
    const again = await mountThroughCache('mnt-again');
    await withMountLog(() => again, () => expectExactReads(again, ['a', 'b', 'c', 'd', 'e']))();
    expect(await cache?.metric('granary_cache_corrupt_blocks_total')).toBe(4);
    expect(await cache?.metric('granary_cache_origin_requests_total')).toBe(5);
    await again.stop();
  });
});
