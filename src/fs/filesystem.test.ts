import { constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import { silentLogger } from '../log/logger';
import { MemoryStore } from '../objectstore/memory';
import { Filesystem } from './filesystem';
import { FuseError, type RequestContext } from './fuse/operations';
import { DirentType, OpenFlag, ROOT_NODE_ID } from './fuse/protocol';

const { errno } = constants;
const context: RequestContext = { unique: 1n, uid: 0, gid: 0, pid: 1, signal: new AbortController().signal, expired: new AbortController().signal, progress: () => undefined };
const PREFIX = 'volumes/v1/';
const FILE_MODE = fsConstants.S_IFREG | 0o666;
const DIRECTORY_MODE = fsConstants.S_IFDIR | 0o777;

async function expectErrno(promise: Promise<unknown>, expected: number): Promise<void> {
  await expect(promise).rejects.toBeInstanceOf(FuseError);
  await expect(promise).rejects.toMatchObject({ errno: expected });
}

describe('Filesystem', () => {
  let store: MemoryStore;
  let now: number;
  let fs: Filesystem;

  beforeEach(async () => {
    store = new MemoryStore();
    now = 1_000_000;
    await store.put(`${PREFIX}hello.txt`, Buffer.from('hello world'));
    await store.put(`${PREFIX}data/a.bin`, Buffer.from('aaaa'));
    await store.put(`${PREFIX}data/deep/b.bin`, Buffer.from('bbbbbb'));
    await store.put(`${PREFIX}empty/`, Buffer.alloc(0)); // a directory marker only
    await store.put('outside.txt', Buffer.from('not in the volume'));
    fs = new Filesystem({ store, prefix: PREFIX, attrTimeoutMs: 1000, listPageSize: 1000, logger: silentLogger(), clock: () => now });
  });

  async function lookupPath(path: string) {
    let parent = ROOT_NODE_ID;
    let entry;
    for (const name of path.split('/')) {
      entry = await fs.lookup(context, parent, name);
      parent = entry.nodeId;
    }
    if (!entry) throw new Error('empty path');
    return entry;
  }

  async function list(nodeId: number, size = 4096): Promise<Array<[string, number]>> {
    const { handle } = await fs.opendir(context, nodeId, 0);
    const names: Array<[string, number]> = [];
    let offset = 0;
    while (true) {
      const page = await fs.readdir(context, nodeId, handle, offset, size);
      if (page.length === 0) break;
      names.push(...page.map((entry): [string, number] => [entry.name, entry.type]));
      offset = page[page.length - 1]?.nextOffset ?? 0;
    }
    await fs.releasedir(context, nodeId, handle);
    return names;
  }

  it('looks up files (HEAD) and directories (common prefix or marker) with their attributes', async () => {
    const file = await lookupPath('hello.txt');
    expect(file.attributes).toMatchObject({ ino: file.nodeId, size: 11, mode: FILE_MODE, uid: 0, gid: 0 }); // writable by any pod uid
    expect(file.entryTimeoutMs).toBe(1000);
    expect((await lookupPath('data')).attributes.mode).toBe(DIRECTORY_MODE);
    expect((await lookupPath('data/deep')).attributes.mode).toBe(DIRECTORY_MODE);
    expect((await lookupPath('empty')).attributes.mode).toBe(DIRECTORY_MODE);
    expect((await lookupPath('data/deep/b.bin')).attributes.size).toBe(6);
  });

  it('answers ENOENT for a missing name and ENOTDIR below a file', async () => {
    await expectErrno(fs.lookup(context, ROOT_NODE_ID, 'nope'), errno.ENOENT);
    await expectErrno(fs.lookup(context, ROOT_NODE_ID, 'outside.txt'), errno.ENOENT);
    const file = await lookupPath('hello.txt');
    await expectErrno(fs.lookup(context, file.nodeId, 'x'), errno.ENOTDIR);
    await expectErrno(fs.lookup(context, ROOT_NODE_ID, 'x'.repeat(256)), errno.ENAMETOOLONG);
  });

  it('lets a directory win over an object of the same name', async () => {
    await store.put(`${PREFIX}data`, Buffer.from('shadowed'));
    expect((await lookupPath('data')).attributes.mode).toBe(DIRECTORY_MODE);
    expect(await list(ROOT_NODE_ID)).toEqual([
      ['.', DirentType.DIRECTORY],
      ['..', DirentType.DIRECTORY],
      ['data', DirentType.DIRECTORY],
      ['empty', DirentType.DIRECTORY],
      ['hello.txt', DirentType.REGULAR],
    ]);
  });

  it('lists a directory across many LIST pages and many READDIR calls', async () => {
    const names = Array.from({ length: 1500 }, (_, i) => `f${String(i).padStart(5, '0')}`);
    await Promise.all(names.map((name) => store.put(`${PREFIX}big/${name}`, Buffer.from(name))));
    const small = new Filesystem({ store, prefix: PREFIX, attrTimeoutMs: 1000, listPageSize: 100, logger: silentLogger() });
    const big = await small.lookup(context, ROOT_NODE_ID, 'big');
    const listed = await (async () => {
      const { handle } = await small.opendir(context, big.nodeId, 0);
      const out: string[] = [];
      let offset = 0;
      while (true) {
        const page = await small.readdir(context, big.nodeId, handle, offset, 4096);
        if (page.length === 0) break;
        out.push(...page.map((entry) => entry.name));
        offset = page[page.length - 1]?.nextOffset ?? 0;
      }
      return out;
    })();
    expect(listed).toEqual(['.', '..', ...names]);
  });

  it('skips names a directory cannot show (its own marker, empty segments, too long)', async () => {
    await store.put(`${PREFIX}odd//double`, Buffer.from('x'));
    await store.put(`${PREFIX}odd/${'y'.repeat(300)}`, Buffer.from('x'));
    await store.put(`${PREFIX}odd/ok`, Buffer.from('x'));
    await store.put(`${PREFIX}odd/`, Buffer.alloc(0));
    const odd = await lookupPath('odd');
    expect((await list(odd.nodeId)).map(([name]) => name)).toEqual(['.', '..', 'ok']);
  });

  it('answers lookups after a listing from the listing, without a HEAD', async () => {
    await list(ROOT_NODE_ID);
    store.failNext('head', 'Unavailable');
    store.failNext('list', 'Unavailable');
    expect((await lookupPath('hello.txt')).attributes.size).toBe(11);
  });

  it('asks the store again once the attribute TTL has passed', async () => {
    const first = await lookupPath('hello.txt');
    await store.put(`${PREFIX}hello.txt`, Buffer.from('hello again, longer'));
    expect((await fs.getattr(context, first.nodeId)).attributes.size).toBe(11);
    now += 1000;
    expect((await fs.getattr(context, first.nodeId)).attributes.size).toBe(19);
  });

  it('reads exactly the requested range, short at the end of the file', async () => {
    const file = await lookupPath('hello.txt');
    const { handle } = await fs.open(context, file.nodeId, fsConstants.O_RDONLY);
    expect((await fs.read(context, file.nodeId, handle, 0, 5)).toString()).toBe('hello');
    expect((await fs.read(context, file.nodeId, handle, 6, 4096)).toString()).toBe('world');
    expect((await fs.read(context, file.nodeId, handle, 11, 4096)).length).toBe(0);
    await fs.release(context, file.nodeId, handle, 0);
    await expectErrno(fs.read(context, file.nodeId, handle, 0, 5), errno.EBADF);
  });

  it('keeps the kernel page cache across opens only while the ETag is unchanged', async () => {
    const file = await lookupPath('hello.txt');
    expect(((await fs.open(context, file.nodeId, 0)).flags ?? 0) & OpenFlag.KEEP_CACHE).toBe(0);
    expect(((await fs.open(context, file.nodeId, 0)).flags ?? 0) & OpenFlag.KEEP_CACHE).toBe(OpenFlag.KEEP_CACHE);
    await store.put(`${PREFIX}hello.txt`, Buffer.from('changed'));
    now += 1000;
    expect(((await fs.open(context, file.nodeId, 0)).flags ?? 0) & OpenFlag.KEEP_CACHE).toBe(0);
  });

  it('spares the kernel a FLUSH at close of a read handle (NOFLUSH), never of a write handle', async () => {
    const file = await lookupPath('hello.txt');
    expect(((await fs.open(context, file.nodeId, fsConstants.O_RDONLY)).flags ?? 0) & OpenFlag.NOFLUSH).toBe(OpenFlag.NOFLUSH);
    expect(((await fs.open(context, file.nodeId, fsConstants.O_WRONLY)).flags ?? 0) & OpenFlag.NOFLUSH).toBe(0);
    expect(((await fs.open(context, file.nodeId, fsConstants.O_RDWR)).flags ?? 0) & OpenFlag.NOFLUSH).toBe(0);
  });

  it('fails a read with EIO when the object changed under the open handle', async () => {
    const file = await lookupPath('hello.txt');
    const { handle } = await fs.open(context, file.nodeId, 0);
    await store.put(`${PREFIX}hello.txt`, Buffer.from('HELLO WORLD'));
    await expectErrno(fs.read(context, file.nodeId, handle, 0, 5), errno.EIO);
  });

  it('maps store failures to errno', async () => {
    store.failNext('head', 'AccessDenied');
    store.failNext('list', 'AccessDenied');
    await expectErrno(fs.lookup(context, ROOT_NODE_ID, 'secret'), errno.EACCES);
    store.failNext('list', 'Unavailable');
    const { handle } = await fs.opendir(context, ROOT_NODE_ID, 0);
    await expectErrno(fs.readdir(context, ROOT_NODE_ID, handle, 0, 4096), errno.EIO);
    expect((await fs.readdir(context, ROOT_NODE_ID, handle, 0, 4096)).length).toBeGreaterThan(2); // a retry lists again
  });

  it('refuses every change with EROFS when read-only, and still reads', async () => {
    const ro = new Filesystem({ store, prefix: PREFIX, attrTimeoutMs: 1000, listPageSize: 1000, logger: silentLogger(), readOnly: true });
    const file = await ro.lookup(context, ROOT_NODE_ID, 'hello.txt');
    const data = await ro.lookup(context, ROOT_NODE_ID, 'data');
    await expectErrno(ro.open(context, file.nodeId, fsConstants.O_WRONLY), errno.EROFS);
    await expectErrno(ro.open(context, file.nodeId, fsConstants.O_RDWR), errno.EROFS);
    await expectErrno(ro.open(context, file.nodeId, fsConstants.O_RDONLY | fsConstants.O_TRUNC), errno.EROFS);
    await expectErrno(ro.create(context, ROOT_NODE_ID, 'new', 0o644, fsConstants.O_WRONLY, 0), errno.EROFS);
    await expectErrno(ro.mknod(context, ROOT_NODE_ID, 'new', fsConstants.S_IFREG | 0o644, 0, 0), errno.EROFS);
    await expectErrno(ro.mkdir(context, ROOT_NODE_ID, 'new', 0o755, 0), errno.EROFS);
    await expectErrno(ro.unlink(context, ROOT_NODE_ID, 'hello.txt'), errno.EROFS);
    await expectErrno(ro.rmdir(context, ROOT_NODE_ID, 'empty'), errno.EROFS);
    await expectErrno(ro.rename(context, ROOT_NODE_ID, { newParent: data.nodeId, name: 'hello.txt', newName: 'x', flags: 0 }), errno.EROFS);
    await expectErrno(ro.setattr(context, file.nodeId, { size: 0 }), errno.EROFS);
    await expectErrno(ro.setattr(context, file.nodeId, { mtimeMs: 'now' }), errno.EROFS);
    await expectErrno(ro.access(context, file.nodeId, fsConstants.W_OK), errno.EROFS);
    await expect(ro.access(context, file.nodeId, fsConstants.R_OK)).resolves.toBeUndefined();
    const { handle } = await ro.open(context, file.nodeId, fsConstants.O_RDONLY);
    await expectErrno(ro.write(context, file.nodeId, handle, 0, Buffer.from('x')), errno.EBADF);
    expect((await ro.read(context, file.nodeId, handle, 0, 5)).toString()).toBe('hello');
    expect(store.keys()).toContain(`${PREFIX}hello.txt`);
  });

  it('shows the configured owner and modes', async () => {
    const owned = new Filesystem({ store, prefix: PREFIX, attrTimeoutMs: 1000, listPageSize: 1000, logger: silentLogger(), ownership: { uid: 1000, gid: 2000, fileMode: 0o640, dirMode: 0o750 } });
    expect((await owned.lookup(context, ROOT_NODE_ID, 'hello.txt')).attributes).toMatchObject({ uid: 1000, gid: 2000, mode: fsConstants.S_IFREG | 0o640 });
    expect((await owned.lookup(context, ROOT_NODE_ID, 'data')).attributes).toMatchObject({ uid: 1000, gid: 2000, mode: fsConstants.S_IFDIR | 0o750 });
  });

  it('opens directories only as directories and files only as files', async () => {
    const file = await lookupPath('hello.txt');
    await expectErrno(fs.open(context, ROOT_NODE_ID, 0), errno.EISDIR);
    await expectErrno(fs.opendir(context, file.nodeId, 0), errno.ENOTDIR);
  });

  it('forgets nodes when the kernel does', async () => {
    const file = await lookupPath('hello.txt');
    await lookupPath('hello.txt');
    fs.forget(file.nodeId, 2);
    expect(fs.inodes.get(file.nodeId)).toBeUndefined();
    await expectErrno(fs.getattr(context, file.nodeId), errno.ESTALE);
  });

  it('reports a large, free filesystem to statfs', async () => {
    const statfs = await fs.statfs();
    expect(statfs.blocks * statfs.blockSize).toBeGreaterThanOrEqual(2 ** 50);
    expect(statfs.nameLength).toBe(255);
  });
});
