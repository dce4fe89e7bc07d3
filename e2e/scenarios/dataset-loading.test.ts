// Workload: a training job loading a dataset of many small files. 2,000 objects of 64 KiB (a nested
// tree of 20 leaf directories plus one flat directory of 1,500 samples) are put with the SDK, then
// walked, listed, sized and read back by 8 parallel workers through a real granary mount.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { mountGranary, s3MountEnv, stopAllMounts, withMountLog, type GranaryMount } from '../support/mount';
import { createBucket, s3Client, testS3 } from '../support/s3-server';
import { deleteBucket, makeTemp, parseSha256sum, putObjects, removeTemp, seededBytes, sha256, shellQuote, shOk } from './helpers';

jest.setTimeout(180_000);

const FILE_SIZE = 64 * 1024;
const WORKERS = 8;
/** The flat directory, larger than one 1,000-key LIST page. */
const FLAT_DIR = 'val';
const FLAT_COUNT = 1500;

/** Relative paths of the dataset: train/shard-S/class-C/img-N.bin (5 × 4 × 25) and val/sample-N.bin (1,500). */
function datasetFiles(): string[] {
  const files: string[] = [];
  for (let shard = 0; shard < 5; shard++) {
    for (let label = 0; label < 4; label++) {
      for (let n = 0; n < 25; n++) files.push(`train/shard-${shard}/class-${label}/img-${String(n).padStart(3, '0')}.bin`);
    }
  }
  for (let n = 0; n < FLAT_COUNT; n++) files.push(`${FLAT_DIR}/sample-${String(n).padStart(4, '0')}.bin`);
  return files;
}

/** Every directory that holds the files, the root ('') included. */
function directoriesOf(files: readonly string[]): string[] {
  const directories = new Set<string>(['']);
  for (const file of files) {
    for (let dir = path.posix.dirname(file); dir !== '.'; dir = path.posix.dirname(dir)) directories.add(dir);
  }
  return [...directories].sort();
}

const FILES = datasetFiles();
const DIRECTORIES = directoriesOf(FILES);
const TOTAL_BYTES = FILES.length * FILE_SIZE;

let client: S3Client;
let bucket: string;
let base: string | undefined;
let mount: GranaryMount | undefined;
/** Relative path → sha256 of what was uploaded. */
const expectedSums = new Map<string, string>();
const root = () => (mount as GranaryMount).mountpoint;

beforeAll(async () => {
  client = s3Client(testS3());
  bucket = await createBucket(testS3(), 'dataset-loading');
  const objects = FILES.map((file): [string, Buffer] => {
    const data = seededBytes(`dataset/${file}`, 0, FILE_SIZE);
    expectedSums.set(file, sha256(data));
    return [`datasets/imagenet-mini/${file}`, data];
  });
  await putObjects(client, bucket, objects, 32);
  base = makeTemp('dataset-loading');
  fs.mkdirSync(path.join(base, 'mnt'));
  mount = await mountGranary({ source: `s3://${bucket}/datasets/imagenet-mini`, mountpoint: path.join(base, 'mnt'), env: s3MountEnv(testS3()) });
});

afterAll(async () => {
  await stopAllMounts();
  removeTemp(base);
  if (bucket) await deleteBucket(client, bucket);
  client?.destroy();
});

it(`find counts ${FILES.length} files in the expected directories`, withMountLog(() => mount, async () => {
  expect((await shOk(`find ${shellQuote(root())} -type f | wc -l`)).trim()).toBe(String(FILES.length));
  const directories = (await shOk(`cd ${shellQuote(root())} && find . -type d`)).trim().split('\n');
  expect(directories.map((dir) => dir.replace(/^\.\/?/, '')).sort()).toEqual(DIRECTORIES);
}));

it('ls -lR lists every file with its size', withMountLog(() => mount, async () => {
  const listed: string[] = [];
  let directory = '';
  for (const line of (await shOk(`cd ${shellQuote(root())} && ls -lR`)).split('\n')) {
    const header = /^(.*):$/.exec(line);
    if (header) {
      directory = (header[1] as string).replace(/^\.\/?/, '');
      continue;
    }
    const file = /^-\S+\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+\S+\s+(.+)$/.exec(line);
    if (file) {
      expect(Number(file[1])).toBe(FILE_SIZE);
      listed.push(path.posix.join(directory, file[2] as string));
    }
  }
  expect(listed.sort()).toEqual([...FILES].sort());
}));

it('du -sb adds up to the bytes uploaded', withMountLog(() => mount, async () => {
  // du also counts each directory's own st_size, whatever the filesystem reports for it.
  const directoryBytes = DIRECTORIES.reduce((sum, dir) => sum + fs.statSync(path.join(root(), dir)).size, 0);
  const [bytes] = (await shOk(`du -sb ${shellQuote(root())}`)).split('\t');
  expect(Number(bytes)).toBe(TOTAL_BYTES + directoryBytes);
}));

it(`lists the ${FLAT_COUNT}-entry directory completely (past one 1,000-key LIST page)`, withMountLog(() => mount, async () => {
  const expected = FILES.filter((file) => file.startsWith(`${FLAT_DIR}/`)).map((file) => path.posix.basename(file));
  expect(fs.readdirSync(path.join(root(), FLAT_DIR)).sort()).toEqual(expected);
  expect((await shOk(`ls ${shellQuote(path.join(root(), FLAT_DIR))}`)).trim().split('\n')).toEqual(expected);
}));

it(`reads every file with ${WORKERS} parallel workers, each byte-exact`, withMountLog(() => mount, async () => {
  const output = await shOk(`cd ${shellQuote(root())} && find . -type f -print0 | xargs -0 -P ${WORKERS} -n 50 sha256sum`);
  const sums = parseSha256sum(output);
  const actual = new Map([...sums].map(([file, sum]) => [file.replace(/^\.\//, ''), sum]));
  expect(actual.size).toBe(FILES.length);
  const mismatched = FILES.filter((file) => actual.get(file) !== expectedSums.get(file));
  expect(mismatched).toEqual([]);
}));
