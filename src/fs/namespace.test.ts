// Namespace changes through the Filesystem's FUSE methods over a MemoryStore, with the real read
// and write paths (staging files in a temporary directory).
import * as nodeFs from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../log/logger';
import { MemoryStore } from '../objectstore/memory';
import { Filesystem } from './filesystem';
import { FuseError, type RequestContext } from './fuse/operations';
import { ROOT_NODE_ID } from './fuse/protocol';
import { ObjectFileOpener } from './file-opener';
import { RenameFlag } from './namespace';
import { DEFAULT_READ_PATH_CONFIG } from '../config/read-path';
import { ReadPath } from './read/read-path';
import { createWritePath } from './write';

const { errno } = constants;
const context: RequestContext = { unique: 1n, uid: 1000, gid: 1000, pid: 1, signal: new AbortController().signal, expired: new AbortController().signal, progress: () => undefined };
const PREFIX = 'vol/';
const WRITE = fsConstants.O_WRONLY;

async function expectErrno(promise: Promise<unknown>, expected: number): Promise<void> {
  await expect(promise).rejects.toBeInstanceOf(FuseError);
  await expect(promise).rejects.toMatchObject({ errno: expected });
}

describe('Filesystem namespace changes', () => {
  let store: MemoryStore;
  let opener: ObjectFileOpener;
  let now: number;
  let fs: Filesystem;
  let stagingDir: string;

  const make = (options: { listPageSize?: number; renameConcurrency?: number } = {}) =>
    new Filesystem({ store, prefix: PREFIX, attrTimeoutMs: 1000, listPageSize: options.listPageSize ?? 1000, renameConcurrency: options.renameConcurrency ?? 4, logger: silentLogger(), opener, clock: () => now });

  beforeEach(async () => {
    store = new MemoryStore();
    stagingDir = nodeFs.mkdtempSync(path.join(os.tmpdir(), 'granary-namespace-'));
    const logger = silentLogger();
    opener = new ObjectFileOpener({
      store,
      readPath: new ReadPath({ store, config: DEFAULT_READ_PATH_CONFIG, logger }),
      writePath: createWritePath({ stagingDir, stagingMinFreeBytes: 0 }),
      logger,
    });
    now = 1_000_000;
    await store.put(`${PREFIX}a.txt`, Buffer.from('alpha'));
    await store.put(`${PREFIX}dir/one.txt`, Buffer.from('one'));
    await store.put(`${PREFIX}dir/sub/two.txt`, Buffer.from('two'));
    await store.put(`${PREFIX}dir/sub/`, Buffer.alloc(0));
    await store.put(`${PREFIX}empty/`, Buffer.alloc(0));
    fs = make();
  });

  afterEach(() => {
    opener.close();
    nodeFs.rmSync(stagingDir, { recursive: true, force: true });
  });

  async function content(key: string): Promise<string> {
    const result = await store.get(`${PREFIX}${key}`);
    let text = '';
    for await (const chunk of result.body as AsyncIterable<Buffer>) text += chunk.toString();
    return text;
  }

  const volumeKeys = () => store.keys().filter((key) => key.startsWith(PREFIX)).map((key) => key.slice(PREFIX.length));

  async function nodeOf(path: string): Promise<number> {
    let parent = ROOT_NODE_ID;
    for (const name of path.split('/')) parent = (await fs.lookup(context, parent, name)).nodeId;
    return parent;
  }

  async function names(path: string): Promise<string[]> {
    const nodeId = path === '' ? ROOT_NODE_ID : await nodeOf(path);
    const { handle } = await fs.opendir(context, nodeId, 0);
    const entries = await fs.readdir(context, nodeId, handle, 0, 64 * 1024);
    await fs.releasedir(context, nodeId, handle);
    return entries.map((entry) => entry.name).filter((name) => name !== '.' && name !== '..');
  }

  describe('create', () => {
    it('shows a new file to lookup and readdir at once; the object appears at the first flush', async () => {
      const { entry, open } = await fs.create(context, ROOT_NODE_ID, 'new.bin', 0o644, WRITE, 0o022);
      expect(entry.attributes).toMatchObject({ size: 0, mode: fsConstants.S_IFREG | 0o666 });
      expect(volumeKeys()).not.toContain('new.bin');
      expect(await names('')).toContain('new.bin');
      expect((await fs.lookup(context, ROOT_NODE_ID, 'new.bin')).nodeId).toBe(entry.nodeId);

      expect(await fs.write(context, entry.nodeId, open.handle, 0, Buffer.from('hello'))).toBe(5);
      expect((await fs.getattr(context, entry.nodeId)).attributes.size).toBe(5); // the size written so far
      expect((await fs.getattr(context, entry.nodeId, open.handle)).attributes.size).toBe(5);
      await fs.flush(context, entry.nodeId, open.handle);
      expect(volumeKeys()).toContain('new.bin');
      await fs.release(context, entry.nodeId, open.handle, 0);
      expect((await store.head(`${PREFIX}new.bin`)).size).toBe(5);
      expect((await fs.getattr(context, entry.nodeId)).attributes.size).toBe(5); // now from the store
    });

    it('stores an empty file created and closed without writes when it is released (its flush publishes nothing)', async () => {
      const { entry, open } = await fs.create(context, ROOT_NODE_ID, 'touched', 0o644, WRITE, 0);
      await fs.flush(context, entry.nodeId, open.handle);
      expect(volumeKeys()).not.toContain('touched');
      await fs.release(context, entry.nodeId, open.handle, 0);
      expect((await store.head(`${PREFIX}touched`)).size).toBe(0);
    });

    it('forgets a file whose first upload failed once it is released', async () => {
      const { entry, open } = await fs.create(context, ROOT_NODE_ID, 'doomed', 0o644, WRITE, 0);
      await fs.write(context, entry.nodeId, open.handle, 0, Buffer.from('lost'));
      store.failNext('put', 'Unavailable');
      await expectErrno(fs.flush(context, entry.nodeId, open.handle), errno.EIO);
      await fs.release(context, entry.nodeId, open.handle, 0);
      await expectErrno(fs.lookup(context, ROOT_NODE_ID, 'doomed'), errno.ENOENT);
    });

    it('answers EEXIST to O_EXCL when the name exists, and checks names', async () => {
      await expectErrno(fs.create(context, ROOT_NODE_ID, 'a.txt', 0o644, WRITE | fsConstants.O_EXCL, 0), errno.EEXIST);
      await expectErrno(fs.create(context, ROOT_NODE_ID, 'x'.repeat(256), 0o644, WRITE, 0), errno.ENAMETOOLONG);
      await expectErrno(fs.create(context, ROOT_NODE_ID, 'a/b', 0o644, WRITE, 0), errno.EINVAL);
      const file = await nodeOf('a.txt');
      await expectErrno(fs.create(context, file, 'x', 0o644, WRITE, 0), errno.ENOTDIR);
    });

    it('refuses a path whose object key would exceed 1024 bytes with ENAMETOOLONG', async () => {
      let parent = ROOT_NODE_ID;
      for (let depth = 0; depth < 4; depth++) parent = (await fs.mkdir(context, parent, `${depth}${'d'.repeat(249)}`, 0o755, 0)).nodeId;
      await expectErrno(fs.create(context, parent, 'f'.repeat(20), 0o644, WRITE, 0), errno.ENAMETOOLONG);
      await expectErrno(fs.mkdir(context, parent, 'f'.repeat(20), 0o755, 0), errno.ENAMETOOLONG);
      await expect(fs.create(context, parent, 'ok', 0o644, WRITE, 0)).resolves.toBeDefined();
    });
  });

  describe('open for writing', () => {
    it('opens an existing file with O_TRUNC empty and uploads the new content at close', async () => {
      const node = await nodeOf('a.txt');
      const { handle } = await fs.open(context, node, WRITE | fsConstants.O_TRUNC);
      await fs.write(context, node, handle, 0, Buffer.from('new'));
      await fs.flush(context, node, handle);
      await fs.release(context, node, handle, 0);
      expect(await content('a.txt')).toBe('new');
    });

    it('appends with O_APPEND', async () => {
      const node = await nodeOf('a.txt');
      const { handle } = await fs.open(context, node, WRITE | fsConstants.O_APPEND);
      await fs.write(context, node, handle, 0, Buffer.from('+beta'));
      await fs.flush(context, node, handle);
      await fs.release(context, node, handle, 0);
      expect(await content('a.txt')).toBe('alpha+beta');
    });

    it('refuses to open a directory and fails with ENOENT when the object is gone', async () => {
      await expectErrno(fs.open(context, await nodeOf('dir'), WRITE), errno.EISDIR);
      const node = await nodeOf('a.txt');
      await store.delete(`${PREFIX}a.txt`);
      now += 1000;
      await expectErrno(fs.open(context, node, WRITE), errno.ENOENT);
    });
  });

  describe('mknod', () => {
    it('puts an empty object for a regular file at once and refuses other node types with EPERM', async () => {
      const entry = await fs.mknod(context, ROOT_NODE_ID, 'node', fsConstants.S_IFREG | 0o644, 0, 0);
      expect(entry.attributes.size).toBe(0);
      expect(volumeKeys()).toContain('node');
      await expectErrno(fs.mknod(context, ROOT_NODE_ID, 'fifo', fsConstants.S_IFIFO | 0o644, 0, 0), errno.EPERM);
      await expectErrno(fs.mknod(context, ROOT_NODE_ID, 'a.txt', fsConstants.S_IFREG | 0o644, 0, 0), errno.EEXIST);
    });
  });

  describe('mkdir', () => {
    it('puts a dir/ marker so the empty directory persists, and answers EEXIST for any existing name', async () => {
      const entry = await fs.mkdir(context, ROOT_NODE_ID, 'made', 0o755, 0);
      expect(entry.attributes.mode).toBe(fsConstants.S_IFDIR | 0o777);
      expect(volumeKeys()).toContain('made/');
      expect(await names('')).toContain('made');
      expect(await names('made')).toEqual([]);
      await expectErrno(fs.mkdir(context, ROOT_NODE_ID, 'made', 0o755, 0), errno.EEXIST);
      await expectErrno(fs.mkdir(context, ROOT_NODE_ID, 'a.txt', 0o755, 0), errno.EEXIST);
      await expectErrno(fs.mkdir(context, ROOT_NODE_ID, 'dir', 0o755, 0), errno.EEXIST); // a common prefix only
    });

    it('maps store failures: AccessDenied to EACCES, Unavailable to EIO', async () => {
      store.failNext('put', 'AccessDenied');
      await expectErrno(fs.mkdir(context, ROOT_NODE_ID, 'm1', 0o755, 0), errno.EACCES);
      store.failNext('put', 'Unavailable');
      await expectErrno(fs.mkdir(context, ROOT_NODE_ID, 'm2', 0o755, 0), errno.EIO);
    });
  });

  describe('rmdir', () => {
    it('deletes the marker of an empty directory', async () => {
      await fs.rmdir(context, ROOT_NODE_ID, 'empty');
      expect(volumeKeys()).not.toContain('empty/');
      await expectErrno(fs.lookup(context, ROOT_NODE_ID, 'empty'), errno.ENOENT);
    });

    it('answers ENOTEMPTY when anything is under it, ENOTDIR for a file and ENOENT for nothing', async () => {
      await expectErrno(fs.rmdir(context, ROOT_NODE_ID, 'dir'), errno.ENOTEMPTY);
      await expectErrno(fs.rmdir(context, await nodeOf('dir'), 'sub'), errno.ENOTEMPTY);
      await expectErrno(fs.rmdir(context, ROOT_NODE_ID, 'a.txt'), errno.ENOTDIR);
      await expectErrno(fs.rmdir(context, ROOT_NODE_ID, 'nothing'), errno.ENOENT);
    });

    it('answers ENOTEMPTY while a file is being created inside, before the store has it', async () => {
      const empty = await nodeOf('empty');
      await fs.create(context, empty, 'pending', 0o644, WRITE, 0);
      await expectErrno(fs.rmdir(context, ROOT_NODE_ID, 'empty'), errno.ENOTEMPTY);
    });

    it('keeps the parent of a removed directory as a directory', async () => {
      await store.put(`${PREFIX}outer/inner/`, Buffer.alloc(0)); // "outer" exists only as a common prefix
      await fs.rmdir(context, await nodeOf('outer'), 'inner');
      expect(volumeKeys()).toContain('outer/');
      expect(await names('outer')).toEqual([]);
    });
  });

  describe('unlink', () => {
    it('deletes the object; EISDIR for a directory, ENOENT for nothing', async () => {
      await fs.unlink(context, ROOT_NODE_ID, 'a.txt');
      expect(volumeKeys()).not.toContain('a.txt');
      await expectErrno(fs.lookup(context, ROOT_NODE_ID, 'a.txt'), errno.ENOENT);
      await expectErrno(fs.unlink(context, ROOT_NODE_ID, 'dir'), errno.EISDIR);
      await expectErrno(fs.unlink(context, ROOT_NODE_ID, 'a.txt'), errno.ENOENT);
    });

    it('keeps a directory that existed only through its last file (marker), and not when others remain', async () => {
      const dir = await nodeOf('dir');
      await fs.unlink(context, dir, 'one.txt');
      expect(volumeKeys()).not.toContain('dir/'); // sub/ is still there
      await store.put(`${PREFIX}only/file`, Buffer.from('x'));
      await fs.unlink(context, await nodeOf('only'), 'file');
      expect(volumeKeys()).toContain('only/');
      expect(await names('')).toContain('only');
    });

    it('maps a refused delete to EACCES', async () => {
      await nodeOf('a.txt');
      store.failNext('delete', 'AccessDenied');
      await expectErrno(fs.unlink(context, ROOT_NODE_ID, 'a.txt'), errno.EACCES);
      expect(volumeKeys()).toContain('a.txt');
    });
  });

  describe('rename', () => {
    const rename = (parent: number, name: string, newParent: number, newName: string, flags = 0) => fs.rename(context, parent, { newParent, name, newName, flags });

    it('moves a file by copy and delete, keeping its node id', async () => {
      const node = await nodeOf('a.txt');
      const dir = await nodeOf('dir');
      await rename(ROOT_NODE_ID, 'a.txt', dir, 'moved.txt');
      expect(volumeKeys()).not.toContain('a.txt');
      expect((await store.head(`${PREFIX}dir/moved.txt`)).size).toBe(5);
      expect(fs.inodes.get(node)?.path).toBe('dir/moved.txt');
      expect((await fs.getattr(context, node)).attributes.size).toBe(5);
      await expectErrno(fs.lookup(context, ROOT_NODE_ID, 'a.txt'), errno.ENOENT);
      expect(await names('dir')).toContain('moved.txt');
    });

    it('replaces an existing file; RENAME_NOREPLACE answers EEXIST, RENAME_EXCHANGE EINVAL', async () => {
      const dir = await nodeOf('dir');
      await expectErrno(rename(ROOT_NODE_ID, 'a.txt', dir, 'one.txt', RenameFlag.NOREPLACE), errno.EEXIST);
      await expectErrno(rename(ROOT_NODE_ID, 'a.txt', dir, 'one.txt', RenameFlag.EXCHANGE), errno.EINVAL);
      await rename(ROOT_NODE_ID, 'a.txt', dir, 'one.txt');
      expect((await store.head(`${PREFIX}dir/one.txt`)).size).toBe(5);
      expect(volumeKeys()).not.toContain('a.txt');
      await rename(dir, 'one.txt', ROOT_NODE_ID, 'fresh.txt', RenameFlag.NOREPLACE);
      expect(volumeKeys()).toContain('fresh.txt');
    });

    it('answers EISDIR, ENOTDIR, ENOTEMPTY, EINVAL and ENOENT where POSIX does', async () => {
      const dir = await nodeOf('dir');
      await expectErrno(rename(ROOT_NODE_ID, 'a.txt', ROOT_NODE_ID, 'empty'), errno.EISDIR);
      await expectErrno(rename(ROOT_NODE_ID, 'empty', ROOT_NODE_ID, 'a.txt'), errno.ENOTDIR);
      await expectErrno(rename(ROOT_NODE_ID, 'empty', ROOT_NODE_ID, 'dir'), errno.ENOTEMPTY);
      await expectErrno(rename(ROOT_NODE_ID, 'dir', dir, 'inside'), errno.EINVAL);
      await expectErrno(rename(ROOT_NODE_ID, 'nothing', ROOT_NODE_ID, 'x'), errno.ENOENT);
      expect(volumeKeys()).toContain('a.txt');
    });

    it('moves a directory object by object, markers and nested nodes included, across LIST pages', async () => {
      for (let i = 0; i < 25; i++) await store.put(`${PREFIX}dir/many/f${i}`, Buffer.from(String(i)));
      fs = make({ listPageSize: 7, renameConcurrency: 3 });
      const sub = await nodeOf('dir/sub');
      const two = await nodeOf('dir/sub/two.txt');
      await rename(ROOT_NODE_ID, 'dir', ROOT_NODE_ID, 'renamed');
      expect(volumeKeys().filter((key) => key.startsWith('dir'))).toEqual([]);
      expect(volumeKeys().filter((key) => key.startsWith('renamed/'))).toHaveLength(28);
      expect(volumeKeys()).toContain('renamed/sub/');
      expect(fs.inodes.get(sub)?.path).toBe('renamed/sub');
      expect(fs.inodes.get(two)?.path).toBe('renamed/sub/two.txt');
      expect((await fs.getattr(context, two)).attributes.size).toBe(3);
      expect(await names('renamed/sub')).toEqual(['two.txt']);
    });

    it('moves a directory over an empty one', async () => {
      await rename(ROOT_NODE_ID, 'dir', ROOT_NODE_ID, 'empty');
      expect(volumeKeys().filter((key) => key.startsWith('empty/'))).toEqual(['empty/', 'empty/one.txt', 'empty/sub/', 'empty/sub/two.txt']);
    });

    it('fails a directory rename midway with EIO, leaving the source complete', async () => {
      fs = make({ renameConcurrency: 1 });
      await nodeOf('dir');
      store.failNext('copy', 'Unavailable');
      await expectErrno(rename(ROOT_NODE_ID, 'dir', ROOT_NODE_ID, 'elsewhere'), errno.EIO);
      expect(volumeKeys().filter((key) => key.startsWith('dir/'))).toEqual(['dir/one.txt', 'dir/sub/', 'dir/sub/two.txt']);
      expect((await fs.lookup(context, ROOT_NODE_ID, 'dir')).attributes.mode & fsConstants.S_IFDIR).toBeTruthy();
    });

    it('makes a file open for writing durable before moving it (write tmp, fsync, rename)', async () => {
      const { entry, open } = await fs.create(context, ROOT_NODE_ID, 'ckpt.tmp', 0o644, WRITE, 0);
      await fs.write(context, entry.nodeId, open.handle, 0, Buffer.from('weights'));
      await fs.fsync(context, entry.nodeId, open.handle, false);
      await rename(ROOT_NODE_ID, 'ckpt.tmp', ROOT_NODE_ID, 'ckpt');
      await fs.flush(context, entry.nodeId, open.handle);
      await fs.release(context, entry.nodeId, open.handle, 0);
      expect(volumeKeys().filter((key) => key.startsWith('ckpt'))).toEqual(['ckpt']);
      expect((await store.head(`${PREFIX}ckpt`)).size).toBe(7);
    });

    it('uploads a never-flushed new file before moving it', async () => {
      const { entry, open } = await fs.create(context, ROOT_NODE_ID, 'pending', 0o644, WRITE, 0);
      await fs.write(context, entry.nodeId, open.handle, 0, Buffer.from('data'));
      await rename(ROOT_NODE_ID, 'pending', ROOT_NODE_ID, 'final');
      expect(volumeKeys()).toContain('final');
      expect(volumeKeys()).not.toContain('pending');
      expect(await names('')).toContain('final');
      await fs.release(context, entry.nodeId, open.handle, 0);
    });
  });

  describe('setattr', () => {
    it('truncates through the open write handle, or on the object when none is open', async () => {
      const node = await nodeOf('a.txt');
      await fs.setattr(context, node, { size: 2 });
      expect(await content('a.txt')).toBe('al');
      expect((await fs.getattr(context, node)).attributes.size).toBe(2);

      const { entry, open } = await fs.create(context, ROOT_NODE_ID, 'w', 0o644, WRITE, 0);
      await fs.write(context, entry.nodeId, open.handle, 0, Buffer.from('12345'));
      expect((await fs.setattr(context, entry.nodeId, { size: 3, handle: open.handle })).attributes.size).toBe(3);
      expect((await fs.setattr(context, entry.nodeId, { size: 1 })).attributes.size).toBe(1); // truncate(2) by path while open
      expect(volumeKeys()).not.toContain('w'); // through the handle: nothing uploaded before close
      await fs.flush(context, entry.nodeId, open.handle);
      await fs.release(context, entry.nodeId, open.handle, 0);
      expect(await content('w')).toBe('1');
      await expectErrno(fs.setattr(context, await nodeOf('dir'), { size: 0 }), errno.EISDIR);
    });

    it('keeps times set with utimes in this mount until the object changes', async () => {
      const node = await nodeOf('a.txt');
      const reply = await fs.setattr(context, node, { mtimeMs: 5_000, atimeMs: 4_000 });
      expect(reply.attributes).toMatchObject({ mtimeMs: 5_000, atimeMs: 4_000 });
      now += 2000; // past the attribute TTL: from the store again, times still kept
      expect((await fs.getattr(context, node)).attributes.mtimeMs).toBe(5_000);
      expect((await fs.setattr(context, node, { mtimeMs: 'now' })).attributes).toMatchObject({ mtimeMs: now, atimeMs: 4_000 });
      await store.put(`${PREFIX}a.txt`, Buffer.from('rewritten by another tool'));
      now += 2000;
      expect((await fs.getattr(context, node)).attributes.mtimeMs).not.toBe(now - 2000);
    });

    it('keeps times set on a file still being written (cp -p, tar) after its close', async () => {
      const { entry, open } = await fs.create(context, ROOT_NODE_ID, 'copied', 0o644, WRITE, 0);
      await fs.write(context, entry.nodeId, open.handle, 0, Buffer.from('x'));
      await fs.setattr(context, entry.nodeId, { mtimeMs: 1234, atimeMs: 1234, handle: open.handle });
      await fs.flush(context, entry.nodeId, open.handle);
      await fs.release(context, entry.nodeId, open.handle, 0);
      now += 2000;
      expect((await fs.getattr(context, entry.nodeId)).attributes.mtimeMs).toBe(1234);
    });

    it('accepts and ignores mode and owner changes', async () => {
      const node = await nodeOf('a.txt');
      const reply = await fs.setattr(context, node, { mode: 0o600, uid: 5, gid: 5 });
      expect(reply.attributes).toMatchObject({ mode: fsConstants.S_IFREG | 0o666, uid: 0, gid: 0 });
    });
  });

  it('answers statfs, access and fsyncdir', async () => {
    expect((await fs.statfs()).nameLength).toBe(255);
    await expect(fs.access(context, ROOT_NODE_ID, fsConstants.W_OK)).resolves.toBeUndefined();
    await expect(fs.fsyncdir()).resolves.toBeUndefined();
  });
});
