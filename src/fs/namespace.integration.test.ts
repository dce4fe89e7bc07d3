// The POSIX namespace through a real FUSE mount of the built CLI on the real S3 server: what
// applications do (mkdir, cp -r, tar x, rm -rf, mv, checkpoints) and what other S3 tools then see
// with the raw SDK. Build first (npm run build; npm test does).
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createBucket, s3Client, testS3 } from '../../e2e/support/s3-server';
import { mountGranary, s3MountEnv, stopAllMounts, withMountLog, type GranaryMount } from '../../e2e/support/mount';

jest.setTimeout(180_000);

const VOLUME = 'team/vol';
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

function run(command: string, args: string[], options: { cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { maxBuffer: 64 * 1024 * 1024, ...options }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

describe('granary mount: the POSIX namespace on the real S3 server', () => {
  let base: string;
  let bucket: string;
  let client: S3Client;
  let mount: GranaryMount;
  const mnt = (...parts: string[]) => path.join(mount.mountpoint, ...parts);
  const logged = (body: () => Promise<void> | void) => withMountLog(() => mount, body);

  /** Keys under the volume, relative to it, as any S3 tool sees them. */
  async function keys(under = ''): Promise<string[]> {
    const found: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${VOLUME}/${under}`, ContinuationToken: token }));
      for (const object of page.Contents ?? []) found.push((object.Key ?? '').slice(VOLUME.length + 1));
      token = page.NextContinuationToken;
    } while (token);
    return found.sort();
  }

  async function object(key: string): Promise<Buffer> {
    const result = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${VOLUME}/${key}` }));
    return Buffer.from(await (result.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  }

  function makeTree(root: string, files: Record<string, Buffer>): void {
    for (const [name, data] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
      fs.writeFileSync(path.join(root, name), data);
    }
  }

  beforeAll(async () => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-namespace-'));
    fs.chmodSync(base, 0o755); // nobody must reach the mountpoint
    fs.mkdirSync(path.join(base, 'mnt'));
    bucket = await createBucket(testS3(), 'namespace');
    client = s3Client(testS3());
    mount = await mountGranary({ source: `s3://${bucket}/${VOLUME}`, mountpoint: path.join(base, 'mnt'), env: s3MountEnv(testS3()) });
  });

  afterAll(async () => {
    await stopAllMounts();
    client?.destroy();
    if (base) fs.rmSync(base, { recursive: true, force: true });
  });

  it('mkdir puts a marker; rmdir refuses a non-empty directory with ENOTEMPTY, then removes it', logged(async () => {
    fs.mkdirSync(mnt('models'));
    expect(await keys('models')).toEqual(['models/']);
    expect(fs.statSync(mnt('models')).isDirectory()).toBe(true);
    expect(() => fs.mkdirSync(mnt('models'))).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    fs.writeFileSync(mnt('models', 'config.json'), '{}');
    expect(() => fs.rmdirSync(mnt('models'))).toThrow(expect.objectContaining({ code: 'ENOTEMPTY' }));
    fs.unlinkSync(mnt('models', 'config.json'));
    expect(fs.readdirSync(mnt('models'))).toEqual([]);
    fs.rmdirSync(mnt('models'));
    expect(await keys('models')).toEqual([]);
    expect(() => fs.statSync(mnt('models'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  }));

  it('create, write, close: the object is there for the raw SDK, byte-exact (small and multipart)', logged(async () => {
    fs.writeFileSync(mnt('hello.txt'), 'hello granary\n');
    const large = randomBytes(20 * 1024 * 1024 + 3); // several 8 MiB parts
    fs.writeFileSync(mnt('large.bin'), large);
    expect((await object('hello.txt')).toString()).toBe('hello granary\n');
    expect(sha256(await object('large.bin'))).toBe(sha256(large));
    expect(fs.statSync(mnt('large.bin')).size).toBe(large.length);
    expect(sha256(fs.readFileSync(mnt('large.bin')))).toBe(sha256(large));
  }));

  it('shows a created file before its close, and stores it at close', logged(async () => {
    const fd = fs.openSync(mnt('open.txt'), 'w');
    try {
      fs.writeSync(fd, 'partial');
      expect(fs.readdirSync(mount.mountpoint)).toContain('open.txt');
      expect(fs.statSync(mnt('open.txt')).size).toBe(7);
      expect(await keys('open')).toEqual([]);
    } finally {
      fs.closeSync(fd);
    }
    expect(await keys('open')).toEqual(['open.txt']);
  }));

  it('unlink deletes the object; EISDIR for a directory', logged(async () => {
    fs.writeFileSync(mnt('gone.txt'), 'x');
    fs.unlinkSync(mnt('gone.txt'));
    expect(await keys('gone')).toEqual([]);
    fs.mkdirSync(mnt('adir'));
    expect(() => fs.unlinkSync(mnt('adir'))).toThrow(expect.objectContaining({ code: expect.stringMatching(/EISDIR|EPERM/) }));
    fs.rmdirSync(mnt('adir'));
  }));

  it('renames a file (over an existing one) and a directory tree', logged(async () => {
    fs.writeFileSync(mnt('a.txt'), 'A');
    fs.writeFileSync(mnt('b.txt'), 'B');
    fs.renameSync(mnt('a.txt'), mnt('b.txt'));
    expect((await keys()).filter((key) => /^[ab]\.txt$/.test(key))).toEqual(['b.txt']);
    expect((await object('b.txt')).toString()).toBe('A');

    makeTree(mnt(), { 'tree/x.txt': Buffer.from('x'), 'tree/sub/y.txt': Buffer.from('y') });
    fs.mkdirSync(mnt('tree', 'empty'));
    fs.renameSync(mnt('tree'), mnt('moved'));
    expect(await keys('tree')).toEqual([]);
    expect(await keys('moved')).toEqual(['moved/', 'moved/empty/', 'moved/sub/', 'moved/sub/y.txt', 'moved/x.txt']);
    expect(fs.readFileSync(mnt('moved', 'sub', 'y.txt'), 'utf8')).toBe('y');
    expect(fs.readdirSync(mnt('moved')).sort()).toEqual(['empty', 'sub', 'x.txt']);
    fs.rmSync(mnt('moved'), { recursive: true });
    fs.unlinkSync(mnt('b.txt'));
  }));

  it('cp -r, tar x and rm -rf of a tree', logged(async () => {
    const source = path.join(base, 'source');
    const files: Record<string, Buffer> = { 'd/a.bin': randomBytes(5000), 'd/e/b.txt': Buffer.from('b\n'), 'd/e/f/c.bin': randomBytes(70_000), 'd/empty.txt': Buffer.alloc(0) };
    makeTree(source, files);
    fs.mkdirSync(path.join(source, 'd', 'hollow'));

    const cp = await run('cp', ['-r', path.join(source, 'd'), mnt('copied')]);
    expect(cp).toMatchObject({ code: 0, stderr: '' });
    const expected = ['copied/', 'copied/a.bin', 'copied/e/', 'copied/e/b.txt', 'copied/e/f/', 'copied/e/f/c.bin', 'copied/empty.txt', 'copied/hollow/'];
    expect(await keys('copied')).toEqual(expected);
    for (const [name, data] of Object.entries(files)) expect(sha256(await object(name.replace(/^d\//, 'copied/')))).toBe(sha256(data));

    const archive = path.join(base, 'tree.tar');
    expect((await run('tar', ['-cf', archive, '-C', source, 'd'])).code).toBe(0);
    fs.mkdirSync(mnt('untarred'));
    const tar = await run('tar', ['-xf', archive, '-C', mnt('untarred')]);
    expect(tar).toMatchObject({ code: 0, stderr: '' });
    for (const [name, data] of Object.entries(files)) expect(sha256(fs.readFileSync(mnt('untarred', name)))).toBe(sha256(data));
    // utimes kept (tar stores whole seconds)
    expect(Math.floor(fs.statSync(mnt('untarred', 'd', 'a.bin')).mtimeMs / 1000)).toBe(Math.floor(fs.statSync(path.join(source, 'd', 'a.bin')).mtimeMs / 1000));

    const rm = await run('rm', ['-rf', mnt('copied'), mnt('untarred')]);
    expect(rm).toMatchObject({ code: 0, stderr: '' });
    expect(await keys('copied')).toEqual([]);
    expect(await keys('untarred')).toEqual([]);
  }));

  it('lets a non-root uid create, write and remove (files 0666, directories 0777)', logged(async () => {
    const script = `cd '${mnt()}' && id -u && mkdir nobody-dir && echo hi > nobody-dir/f.txt && cat nobody-dir/f.txt && echo more >> nobody-dir/f.txt && mv nobody-dir/f.txt nobody-dir/g.txt && ls -l nobody-dir`;
    const result = await run('runuser', ['-u', 'nobody', '--', 'sh', '-c', script]);
    expect(result.stderr).toBe('');
    const [uid, hi, , listing] = result.stdout.trim().split('\n');
    expect(uid).not.toBe('0');
    expect(hi).toBe('hi');
    expect(listing).toMatch(/^-rw-rw-rw- +1 root root +8 .* g\.txt$/);
    expect((await object('nobody-dir/g.txt')).toString()).toBe('hi\nmore\n');
    expect((await run('runuser', ['-u', 'nobody', '--', 'rm', '-r', mnt('nobody-dir')])).code).toBe(0);
    expect(await keys('nobody-dir')).toEqual([]);
  }));

  it('write tmp, fsync, rename (before close) leaves exactly the final object', logged(async () => {
    fs.mkdirSync(mnt('ckpt'));
    const weights = randomBytes(12 * 1024 * 1024);
    const fd = fs.openSync(mnt('ckpt', 'step-100.pt.tmp'), 'w');
    fs.writeSync(fd, weights);
    fs.fsyncSync(fd);
    fs.renameSync(mnt('ckpt', 'step-100.pt.tmp'), mnt('ckpt', 'step-100.pt'));
    fs.closeSync(fd);
    // and the usual order: write, close, rename
    fs.writeFileSync(mnt('ckpt', 'latest.tmp'), 'step-100');
    fs.renameSync(mnt('ckpt', 'latest.tmp'), mnt('ckpt', 'latest'));
    expect(await keys('ckpt')).toEqual(['ckpt/', 'ckpt/latest', 'ckpt/step-100.pt']);
    expect(sha256(await object('ckpt/step-100.pt'))).toBe(sha256(weights));
    expect(fs.readdirSync(mnt('ckpt')).sort()).toEqual(['latest', 'step-100.pt']);
  }));

  it('appends with >> and overwrites with O_TRUNC', logged(async () => {
    fs.writeFileSync(mnt('log.txt'), 'one\n');
    expect((await run('sh', ['-c', `echo two >> '${mnt('log.txt')}'`])).code).toBe(0);
    expect((await object('log.txt')).toString()).toBe('one\ntwo\n');
    expect((await run('sh', ['-c', `echo new > '${mnt('log.txt')}'`])).code).toBe(0);
    expect((await object('log.txt')).toString()).toBe('new\n');
    fs.truncateSync(mnt('log.txt'), 2);
    expect((await object('log.txt')).toString()).toBe('ne');
    expect(fs.readFileSync(mnt('log.txt'), 'utf8')).toBe('ne');
  }));

  it('shows objects other S3 tools write', logged(async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${VOLUME}/external/data.csv`, Body: 'a,b\n' }));
    expect(fs.readdirSync(mount.mountpoint)).toContain('external');
    expect(fs.readFileSync(mnt('external', 'data.csv'), 'utf8')).toBe('a,b\n');
  }));

  it('refuses every change with EROFS on a --read-only mount of the same volume', logged(async () => {
    const roPoint = path.join(base, 'ro');
    fs.mkdirSync(roPoint);
    const ro = await mountGranary({ source: `s3://${bucket}/${VOLUME}`, mountpoint: roPoint, readOnly: true, env: s3MountEnv(testS3()) });
    try {
      const expectErofs = (action: () => void) => expect(action).toThrow(expect.objectContaining({ code: 'EROFS' }));
      expectErofs(() => fs.writeFileSync(path.join(roPoint, 'new.txt'), 'x'));
      expectErofs(() => fs.mkdirSync(path.join(roPoint, 'newdir')));
      expectErofs(() => fs.unlinkSync(path.join(roPoint, 'external', 'data.csv')));
      expectErofs(() => fs.renameSync(path.join(roPoint, 'external'), path.join(roPoint, 'moved')));
      expectErofs(() => fs.truncateSync(path.join(roPoint, 'external', 'data.csv'), 0));
      expect(fs.readFileSync(path.join(roPoint, 'external', 'data.csv'), 'utf8')).toBe('a,b\n');
    } finally {
      await ro.stop();
    }
  }));
});
