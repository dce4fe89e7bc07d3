// Workload: a training job saving and restoring checkpoints on a read-write volume. Through a real
// granary mount: a 256 MiB file written sequentially is a complete object the moment close returns;
// the `write tmp → fsync → rename over final` save leaves exactly the final object; 8 processes write
// 8 shards at once; the restore reads everything back byte-exact. Objects are checked with the raw SDK.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mountGranary, s3MountEnv, stopAllMounts, withMountLog, type GranaryMount } from '../support/mount';
import { createBucket, s3Client, testS3 } from '../support/s3-server';
import {
  deleteBucket,
  listKeys,
  makeTemp,
  MiB,
  objectSha256,
  parseSha256sum,
  pipeSeeded,
  removeTemp,
  seededBytes,
  seededSha256,
  shellQuote,
  shOk,
  spawnStepped,
} from './helpers';

jest.setTimeout(180_000);

const PREFIX = 'runs/llama-ft-7/';
const LARGE_SIZE = 256 * MiB;
const LARGE_FILE = 'checkpoints/step-500/model.safetensors';
const SAVE_SIZE = 24 * MiB + 1;
const SAVE_DIR = 'checkpoints/latest';
const SHARDS = 8;
const SHARD_SIZE = 32 * MiB;
const SHARD_DIR = 'checkpoints/step-1000';
const shardFile = (index: number) => `${SHARD_DIR}/shard-${String(index).padStart(2, '0')}-of-${String(SHARDS).padStart(2, '0')}.safetensors`;

/** python3: copy stdin into FILE with 1 MiB writes, then close (an error on close fails the process). */
const SEQUENTIAL_WRITER = `
import os, shutil, sys
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
f = open(sys.argv[1], 'wb')
shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
f.close()
`;

/**
 * python3: the torch.save-style atomic save. Writes SOURCE into FINAL.tmp, fsyncs, prints "synced"
 * and waits for a line on stdin, then closes and renames the tmp over FINAL, prints "renamed".
 */
const SAVE_WITH_RENAME = `
import os, shutil, sys
source, final = sys.argv[1], sys.argv[2]
tmp = final + '.tmp'
os.makedirs(os.path.dirname(final), exist_ok=True)
with open(source, 'rb') as src, open(tmp, 'wb') as f:
    shutil.copyfileobj(src, f, 1 << 20)
    f.flush()
    os.fsync(f.fileno())
    print('synced', flush=True)
    sys.stdin.readline()
os.replace(tmp, final)
print('renamed', flush=True)
`;

let client: S3Client;
let bucket: string;
let base: string | undefined;
let mount: GranaryMount | undefined;
const root = () => (mount as GranaryMount).mountpoint;
const inMount = (file: string) => path.join(root(), file);

/** Keys under the volume prefix, relative to it, without directory markers. */
async function volumeFiles(under = ''): Promise<string[]> {
  const keys = await listKeys(client, bucket, PREFIX + under);
  return keys.filter((key) => !key.endsWith('/')).map((key) => key.slice(PREFIX.length));
}

async function mountVolume(): Promise<void> {
  await mount?.stop();
  mount = await mountGranary({ source: `s3://${bucket}/${PREFIX}`, mountpoint: path.join(base as string, 'mnt'), env: s3MountEnv(testS3()) });
}

beforeAll(async () => {
  client = s3Client(testS3());
  bucket = await createBucket(testS3(), 'checkpointing');
  base = makeTemp('checkpointing');
  fs.mkdirSync(path.join(base, 'mnt'));
  await mountVolume();
});

afterAll(async () => {
  await stopAllMounts();
  removeTemp(base);
  if (bucket) await deleteBucket(client, bucket);
  client?.destroy();
});

it('a 256 MiB file written sequentially is the complete object as soon as close returns', withMountLog(() => mount, async () => {
  const written = await pipeSeeded('python3', ['-c', SEQUENTIAL_WRITER, inMount(LARGE_FILE)], 'checkpoint/large', LARGE_SIZE);
  expect(written.stderr).toBe('');
  expect(written.code).toBe(0);
  // No waiting: close has returned, so the object store must already hold all of it.
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: PREFIX + LARGE_FILE }));
  expect(head.ContentLength).toBe(LARGE_SIZE);
  expect(await objectSha256(client, bucket, PREFIX + LARGE_FILE)).toEqual({ sha256: seededSha256('checkpoint/large', LARGE_SIZE), size: LARGE_SIZE });
  expect(fs.statSync(inMount(LARGE_FILE)).size).toBe(LARGE_SIZE);
}));

it('write tmp → fsync → rename over final leaves exactly the final object, twice in a row', withMountLog(() => mount, async () => {
  const final = `${SAVE_DIR}/model.pt`;
  for (const save of ['first', 'second']) {
    const seed = `checkpoint/save-${save}`;
    const source = path.join(base as string, `${save}.pt`);
    fs.writeFileSync(source, seededBytes(seed, 0, SAVE_SIZE));
    const saver = spawnStepped('python3', ['-c', SAVE_WITH_RENAME, source, inMount(final)]);
    expect(await saver.nextLine()).toBe('synced');
    // fsync returned: the tmp object is durable, whole.
    expect(await objectSha256(client, bucket, `${PREFIX}${final}.tmp`)).toEqual({ sha256: seededSha256(seed, SAVE_SIZE), size: SAVE_SIZE });
    saver.proceed();
    expect(await saver.nextLine()).toBe('renamed');
    const result = await saver.finished;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await volumeFiles(SAVE_DIR)).toEqual([final]);
    expect(await objectSha256(client, bucket, PREFIX + final)).toEqual({ sha256: seededSha256(seed, SAVE_SIZE), size: SAVE_SIZE });
    expect(fs.readdirSync(inMount(SAVE_DIR))).toEqual(['model.pt']);
    // A resume right after the save reads this save, never the one it replaced.
    const [readBack] = (await shOk(`sha256sum ${shellQuote(inMount(final))}`)).split(' ');
    expect(readBack).toBe(seededSha256(seed, SAVE_SIZE));
  }
}));

it(`${SHARDS} processes write ${SHARDS} shards of 32 MiB at once: every object is right`, withMountLog(() => mount, async () => {
  fs.mkdirSync(inMount(SHARD_DIR), { recursive: true });
  const results = await Promise.all(
    Array.from({ length: SHARDS }, (_, index) => pipeSeeded('python3', ['-c', SEQUENTIAL_WRITER, inMount(shardFile(index))], `checkpoint/shard-${index}`, SHARD_SIZE)),
  );
  for (const result of results) {
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  }
  expect(await volumeFiles(SHARD_DIR)).toEqual(Array.from({ length: SHARDS }, (_, index) => shardFile(index)));
  for (let index = 0; index < SHARDS; index++) {
    expect(await objectSha256(client, bucket, PREFIX + shardFile(index))).toEqual({ sha256: seededSha256(`checkpoint/shard-${index}`, SHARD_SIZE), size: SHARD_SIZE });
  }
}));

/** sha256 of every checkpoint file, read through the current mount, by path relative to the volume. */
async function checkpointSumsThroughMount(): Promise<Map<string, string>> {
  const output = await shOk(`cd ${shellQuote(root())} && find checkpoints -type f -print0 | xargs -0 -P 4 -n 4 sha256sum`);
  return parseSha256sum(output);
}

function expectedCheckpointSums(): Map<string, string> {
  const sums = new Map<string, string>([
    [LARGE_FILE, seededSha256('checkpoint/large', LARGE_SIZE)],
    [`${SAVE_DIR}/model.pt`, seededSha256('checkpoint/save-second', SAVE_SIZE)],
  ]);
  for (let index = 0; index < SHARDS; index++) sums.set(shardFile(index), seededSha256(`checkpoint/shard-${index}`, SHARD_SIZE));
  return sums;
}

it('restores: every checkpoint reads back byte-exact through the mount that wrote it', withMountLog(() => mount, async () => {
  expect(await checkpointSumsThroughMount()).toEqual(expectedCheckpointSums());
}));

it('restores: a fresh mount (a restarted job) reads every checkpoint back byte-exact', withMountLog(() => mount, async () => {
  await mountVolume();
  expect(await checkpointSumsThroughMount()).toEqual(expectedCheckpointSums());
  expect(await volumeFiles()).toEqual([...expectedCheckpointSums().keys()].sort());
}));
