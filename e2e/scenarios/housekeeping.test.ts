// Workload: people and scripts tidying a read-write volume. Through a real granary mount: mkdir and
// rmdir (ENOTEMPTY when not empty), unlink, rename of a file and of a directory with nested files,
// `cp -r` and `tar x` of local trees (compared with diff -r), `rm -rf` down to no object at all; and
// the bucket stays a bucket: SDK objects appear in the mount and written files are plain objects.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { mountGranary, s3MountEnv, stopAllMounts, withMountLog, type GranaryMount } from '../support/mount';
import { createBucket, s3Client, testS3 } from '../support/s3-server';
import { deleteBucket, getObject, listKeys, makeTemp, MiB, putObjects, removeTemp, run, seededBytes, shellQuote, shOk } from './helpers';

jest.setTimeout(180_000);

const PREFIX = 'home/alice/';

let client: S3Client;
let bucket: string;
let base: string;
let mount: GranaryMount | undefined;
const root = () => (mount as GranaryMount).mountpoint;
const inMount = (file: string) => path.join(root(), file);

/** Every key under the volume prefix, relative to it (directory markers included, ending with '/'). */
async function volumeKeys(under = ''): Promise<string[]> {
  return (await listKeys(client, bucket, PREFIX + under)).map((key) => key.slice(PREFIX.length));
}

/** Keys of files only (no directory markers). */
async function volumeFiles(under = ''): Promise<string[]> {
  return (await volumeKeys(under)).filter((key) => !key.endsWith('/'));
}

async function mountVolume(): Promise<void> {
  await mount?.stop();
  mount = await mountGranary({ source: `s3://${bucket}/${PREFIX}`, mountpoint: path.join(base, 'mnt'), env: s3MountEnv(testS3()) });
}

/** Writes a local tree of files of assorted sizes (empty, small, multi-MiB) under `dir`. */
function makeLocalTree(dir: string, seed: string): void {
  const files: Record<string, Buffer> = {
    'README.md': Buffer.from('# project\n'),
    'empty.txt': Buffer.alloc(0),
    'src/main.py': Buffer.from('print("hello")\n'),
    'src/lib/util.py': seededBytes(`${seed}/util`, 0, 4097),
    'data/weights.bin': seededBytes(`${seed}/weights`, 0, 7 * MiB + 5),
    'data/deep/er/still/leaf.bin': seededBytes(`${seed}/leaf`, 0, 128 * 1024),
  };
  for (const [name, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), data);
  }
}

/** Relative paths of the regular files under a local folder, sorted. */
function localFiles(dir: string, under = ''): string[] {
  return fs
    .readdirSync(path.join(dir, under), { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? localFiles(dir, path.posix.join(under, entry.name)) : [path.posix.join(under, entry.name)]))
    .sort();
}

const expectErrno = (code: string, action: () => unknown) => expect(action).toThrow(expect.objectContaining({ code }));

beforeAll(async () => {
  client = s3Client(testS3());
  bucket = await createBucket(testS3(), 'housekeeping');
  base = makeTemp('housekeeping');
  fs.mkdirSync(path.join(base, 'mnt'));
  await mountVolume();
});

afterAll(async () => {
  await stopAllMounts();
  removeTemp(base);
  if (bucket) await deleteBucket(client, bucket);
  client?.destroy();
});

it('mkdir makes directories that survive a remount; rmdir removes an empty one and refuses a full one with ENOTEMPTY', withMountLog(() => mount, async () => {
  fs.mkdirSync(inMount('scratch/a/b'), { recursive: true });
  expect(fs.statSync(inMount('scratch/a/b')).isDirectory()).toBe(true);
  expectErrno('EEXIST', () => fs.mkdirSync(inMount('scratch/a')));

  // An empty directory is kept by the store, not only by this mount's memory.
  await mountVolume();
  expect(fs.readdirSync(inMount('scratch/a'))).toEqual(['b']);

  expectErrno('ENOTEMPTY', () => fs.rmdirSync(inMount('scratch/a')));
  fs.writeFileSync(inMount('scratch/a/b/file.txt'), 'x');
  expectErrno('ENOTEMPTY', () => fs.rmdirSync(inMount('scratch/a/b')));
  // A directory that exists only because an SDK-put object sits under it is not empty either.
  await putObjects(client, bucket, [[`${PREFIX}scratch/implicit/obj.txt`, 'y']]);
  expectErrno('ENOTEMPTY', () => fs.rmdirSync(inMount('scratch/implicit')));

  fs.unlinkSync(inMount('scratch/a/b/file.txt'));
  fs.rmdirSync(inMount('scratch/a/b'));
  fs.rmdirSync(inMount('scratch/a'));
  expectErrno('ENOENT', () => fs.statSync(inMount('scratch/a')));
  expect(fs.readdirSync(inMount('scratch'))).toEqual(['implicit']);
  expect((await volumeKeys('scratch/')).filter((key) => key.startsWith('scratch/a'))).toEqual([]);
}));

it('unlink removes the object', withMountLog(() => mount, async () => {
  fs.writeFileSync(inMount('notes.txt'), 'remember the milk\n');
  expect(await volumeFiles('notes')).toEqual(['notes.txt']);
  fs.unlinkSync(inMount('notes.txt'));
  expectErrno('ENOENT', () => fs.statSync(inMount('notes.txt')));
  expect(await volumeFiles('notes')).toEqual([]);
  expectErrno('ENOENT', () => fs.unlinkSync(inMount('notes.txt')));
}));

it('renames a file: the new key holds the content, the old key is gone', withMountLog(() => mount, async () => {
  const data = seededBytes('housekeeping/rename-file', 0, 6 * MiB + 1);
  fs.writeFileSync(inMount('draft.bin'), data);
  fs.renameSync(inMount('draft.bin'), inMount('final.bin'));
  expectErrno('ENOENT', () => fs.statSync(inMount('draft.bin')));
  expect(fs.readFileSync(inMount('final.bin')).equals(data)).toBe(true);
  expect(await volumeFiles('draft')).toEqual([]);
  expect((await getObject(client, bucket, `${PREFIX}final.bin`)).equals(data)).toBe(true);

  // Into another directory, over a file that is already there.
  fs.mkdirSync(inMount('archive/2024'), { recursive: true });
  fs.writeFileSync(inMount('archive/2024/final.bin'), 'older');
  fs.renameSync(inMount('final.bin'), inMount('archive/2024/final.bin'));
  expect(fs.readdirSync(root()).includes('final.bin')).toBe(false);
  expect(fs.readFileSync(inMount('archive/2024/final.bin')).equals(data)).toBe(true);
  expect(await volumeFiles('final')).toEqual([]);
  expect(await volumeFiles('archive/')).toEqual(['archive/2024/final.bin']);
  expect((await getObject(client, bucket, `${PREFIX}archive/2024/final.bin`)).equals(data)).toBe(true);
}));

it('renames a directory with nested files (some put with the SDK): every object moves', withMountLog(() => mount, async () => {
  makeLocalTree(inMount('project'), 'housekeeping/rename-dir');
  await putObjects(client, bucket, [[`${PREFIX}project/data/from-sdk/part-0000.parquet`, 'PAR1 from spark']]);
  fs.mkdirSync(inMount('project/logs'));
  const before = localFiles(inMount('project'));
  expect(before).toContain('data/from-sdk/part-0000.parquet');
  fs.renameSync(inMount('project'), inMount('project-v2'));
  expectErrno('ENOENT', () => fs.statSync(inMount('project')));
  expect(localFiles(inMount('project-v2'))).toEqual(before);
  // The empty subdirectory moved too, and the store remembers it there.
  await mountVolume();
  expect(fs.readdirSync(inMount('project-v2/logs'))).toEqual([]);
  expectErrno('ENOENT', () => fs.statSync(inMount('project')));
  expect(await volumeKeys('project/')).toEqual([]);
  expect(await volumeFiles('project-v2/')).toEqual(before.map((file) => `project-v2/${file}`));
  expect((await getObject(client, bucket, `${PREFIX}project-v2/data/from-sdk/part-0000.parquet`)).toString()).toBe('PAR1 from spark');
  expect((await getObject(client, bucket, `${PREFIX}project-v2/data/weights.bin`)).equals(seededBytes('housekeeping/rename-dir/weights', 0, 7 * MiB + 5))).toBe(true);
}));

it('cp -r copies a local tree in: diff -r finds no difference, and each file is an object', withMountLog(() => mount, async () => {
  const local = path.join(base, 'cp-source');
  makeLocalTree(local, 'housekeeping/cp');
  await shOk(`cp -r ${shellQuote(local)} ${shellQuote(inMount('copied'))}`);
  const diff = await run('diff', ['-r', local, inMount('copied')]);
  expect(diff.stdout + diff.stderr).toBe('');
  expect(diff.code).toBe(0);
  expect(await volumeFiles('copied/')).toEqual(localFiles(local).map((file) => `copied/${file}`));
}));

it('tar x unpacks an archive into the mount: diff -r against the same archive unpacked locally', withMountLog(() => mount, async () => {
  const source = path.join(base, 'tar-source');
  const archive = path.join(base, 'release.tar');
  const unpackedLocally = path.join(base, 'tar-local');
  makeLocalTree(source, 'housekeeping/tar');
  await shOk(`tar cf ${shellQuote(archive)} -C ${shellQuote(source)} .`);
  fs.mkdirSync(unpackedLocally);
  await shOk(`tar xf ${shellQuote(archive)} -C ${shellQuote(unpackedLocally)}`);
  fs.mkdirSync(inMount('release'));
  const untar = await run('tar', ['xf', archive, '-C', inMount('release')]);
  expect(untar.stderr).toBe('');
  expect(untar.code).toBe(0);
  const diff = await run('diff', ['-r', unpackedLocally, inMount('release')]);
  expect(diff.stdout + diff.stderr).toBe('');
  expect(diff.code).toBe(0);
  expect(await volumeFiles('release/')).toEqual(localFiles(source).map((file) => `release/${file}`));
}));

it('the bucket stays a bucket: SDK objects appear as files, written files are plain objects', withMountLog(() => mount, async () => {
  const fromSpark = seededBytes('housekeeping/spark', 0, 300_000);
  await putObjects(client, bucket, [[`${PREFIX}inbox/spark/part-00000.parquet`, fromSpark]]);
  expect(fs.readdirSync(inMount('inbox/spark'))).toEqual(['part-00000.parquet']);
  expect(fs.readFileSync(inMount('inbox/spark/part-00000.parquet')).equals(fromSpark)).toBe(true);

  fs.writeFileSync(inMount('inbox/reply.md'), '# thanks\n');
  expect((await getObject(client, bucket, `${PREFIX}inbox/reply.md`)).toString()).toBe('# thanks\n');
  expect(await volumeFiles('inbox/')).toEqual(['inbox/reply.md', 'inbox/spark/part-00000.parquet']);
}));

it('rm -rf of everything leaves no object under the prefix', withMountLog(() => mount, async () => {
  expect((await volumeKeys()).length).toBeGreaterThan(10);
  await shOk(`rm -rf ${shellQuote(root())}/*`);
  expect(fs.readdirSync(root())).toEqual([]);
  expect(await volumeKeys()).toEqual([]);
}));
