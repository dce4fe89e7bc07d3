// Workload: an inference server loading a model from a read-only volume. One safetensors-sized
// object (1 GiB and a bit, seeded random bytes uploaded with the SDK) is read through a real
// read-only granary mount: at random offsets by several processes at once, through mmap, and whole
// with cat (each on a cold mount); every write is refused with EROFS.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { mountGranary, s3MountEnv, stopAllMounts, withMountLog, type GranaryMount } from '../support/mount';
import { createBucket, s3Client, testS3 } from '../support/s3-server';
import { deleteBucket, makeTemp, MiB, removeTemp, run, seededBytes, sha256, shellQuote, shOk, uploadSeeded } from './helpers';

jest.setTimeout(180_000);

/** A bit over 1 GiB, so the last block of the object is a short one. */
const MODEL_SIZE = 1024 * MiB + 12_345;
const MODEL_SEED = 'model-serving/model.safetensors';
const MODEL_KEY = 'models/llm-7b/model.safetensors';
const READERS = 4;
const RANGES_PER_READER = 64;
const RANGE_LENGTH = MiB;

/** Random range starts in the object, plus the very last MiB. */
function randomOffsets(count: number): number[] {
  const offsets = Array.from({ length: count - 1 }, () => Math.floor(Math.random() * (MODEL_SIZE - RANGE_LENGTH)));
  return [...offsets, MODEL_SIZE - RANGE_LENGTH];
}

/** A `node -e` reader: pread of each range, one sha256 per line. */
const RANGE_READER = `
const fs = require('node:fs');
const crypto = require('node:crypto');
const [file, offsets, length] = [process.argv[1], JSON.parse(process.argv[2]), Number(process.argv[3])];
const fd = fs.openSync(file, 'r');
const buffer = Buffer.alloc(length);
for (const offset of offsets) {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buffer, done, length - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  console.log(crypto.createHash('sha256').update(buffer.subarray(0, done)).digest('hex'));
}
fs.closeSync(fd);
`;

/** A python3 reader that maps the whole file and hashes slices of the mapping. */
const MMAP_READER = `
import hashlib, json, mmap, sys
path, offsets, length = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
with open(path, 'rb') as f:
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    print(len(m))
    for offset in offsets:
        print(hashlib.sha256(m[offset:offset + length]).hexdigest())
    m.close()
`;

let client: S3Client;
let bucket: string;
let base: string | undefined;
let mount: GranaryMount | undefined;
let modelSha256: string;
const model = () => path.join((mount as GranaryMount).mountpoint, MODEL_KEY);

beforeAll(async () => {
  client = s3Client(testS3());
  bucket = await createBucket(testS3(), 'model-serving');
  modelSha256 = await uploadSeeded(client, bucket, `volume/${MODEL_KEY}`, MODEL_SEED, MODEL_SIZE);
  base = makeTemp('model-serving');
  fs.mkdirSync(path.join(base, 'mnt'));
  await freshMount();
});

/**
 * (Re)mounts the volume read-only. Each read pattern gets a fresh mount: new inodes, so the kernel's
 * page cache filled by one pattern cannot answer the next one's reads.
 */
async function freshMount(): Promise<void> {
  await mount?.stop();
  mount = await mountGranary({ source: `s3://${bucket}/volume`, mountpoint: path.join(base as string, 'mnt'), readOnly: true, env: s3MountEnv(testS3()) });
}

afterAll(async () => {
  await stopAllMounts();
  removeTemp(base);
  if (bucket) await deleteBucket(client, bucket);
  client?.destroy();
});

it('shows the model with its exact size', withMountLog(() => mount, () => {
  expect(fs.readdirSync(path.join((mount as GranaryMount).mountpoint, 'models/llm-7b'))).toEqual(['model.safetensors']);
  expect(fs.statSync(model()).size).toBe(MODEL_SIZE);
}));

it(`reads ${READERS} × ${RANGES_PER_READER} random 1 MiB ranges from ${READERS} processes at once`, withMountLog(() => mount, async () => {
  const plans = Array.from({ length: READERS }, () => randomOffsets(RANGES_PER_READER));
  const results = await Promise.all(
    plans.map((offsets) => run(process.execPath, ['-e', RANGE_READER, model(), JSON.stringify(offsets), String(RANGE_LENGTH)])),
  );
  results.forEach((result, reader) => {
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const expected = (plans[reader] as number[]).map((offset) => sha256(seededBytes(MODEL_SEED, offset, RANGE_LENGTH)));
    expect(result.stdout.trim().split('\n')).toEqual(expected);
  });
}));

it('reads slices through mmap (python3), across block boundaries and up to the last byte', withMountLog(() => mount, async () => {
  await freshMount();
  const block = 4 * MiB;
  const offsets = [0, block - 100, 7 * block + 1, 100 * block - 3, ...randomOffsets(12), MODEL_SIZE - 1000];
  const length = 256 * 1024;
  const result = await run('python3', ['-c', MMAP_READER, model(), JSON.stringify(offsets), String(length)]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const [mappedSize, ...sums] = result.stdout.trim().split('\n');
  expect(Number(mappedSize)).toBe(MODEL_SIZE);
  const expected = offsets.map((offset) => sha256(seededBytes(MODEL_SEED, offset, Math.min(length, MODEL_SIZE - offset))));
  expect(sums).toEqual(expected);
}));

it('reads the whole model sequentially (cat) with the sha256 it was uploaded with', withMountLog(() => mount, async () => {
  await freshMount();
  const output = await shOk(`cat ${shellQuote(model())} | sha256sum`);
  expect(output.split(' ')[0]).toBe(modelSha256);
}));

it('refuses every write with EROFS and leaves the model as it was', withMountLog(() => mount, async () => {
  const root = (mount as GranaryMount).mountpoint;
  const expectErofs = (action: () => unknown) => expect(action).toThrow(expect.objectContaining({ code: 'EROFS' }));
  expectErofs(() => fs.openSync(model(), 'r+'));
  expectErofs(() => fs.appendFileSync(model(), 'x'));
  expectErofs(() => fs.truncateSync(model(), 0));
  expectErofs(() => fs.writeFileSync(path.join(root, 'models/new.bin'), 'x'));
  expectErofs(() => fs.mkdirSync(path.join(root, 'models/new-dir')));
  expectErofs(() => fs.unlinkSync(model()));
  expectErofs(() => fs.renameSync(model(), path.join(root, 'models/renamed.bin')));
  const shell = await run('sh', ['-c', `echo x > ${shellQuote(path.join(root, 'shell.txt'))}`]);
  expect(shell.code).not.toBe(0);
  expect(shell.stderr).toMatch(/Read-only file system/);
  expect(fs.statSync(model()).size).toBe(MODEL_SIZE);
  expect(fs.readdirSync(root)).toEqual(['models']);
}));
