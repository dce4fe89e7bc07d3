// Lookups answered from the parent's listing, counted in store requests, kept consistent with every
// change made through the mount; and READDIRPLUS, counted in kernel lookups.
import { constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import { silentLogger } from '../log/logger';
import type { GetOptions, ListOptions } from '../objectstore/store';
import { MemoryStore } from '../objectstore/memory';
import { Filesystem } from './filesystem';
import { FuseError, type RequestContext } from './fuse/operations';
import { direntPlusSize, ROOT_NODE_ID } from './fuse/protocol';

const { errno } = constants;
const context: RequestContext = { unique: 1n, uid: 0, gid: 0, pid: 1, signal: new AbortController().signal, expired: new AbortController().signal, progress: () => undefined };
const PREFIX = 'vol/';

/** A MemoryStore that counts the requests a client would send. */
class CountingStore extends MemoryStore {
  counts = { head: 0, list: 0, get: 0 };

  override async head(key: string, signal?: AbortSignal) {
    this.counts.head++;
    return super.head(key, signal);
  }

  override async list(options: ListOptions, signal?: AbortSignal) {
    this.counts.list++;
    return super.list(options, signal);
  }

  override async get(key: string, options?: GetOptions) {
    this.counts.get++;
    return super.get(key, options);
  }

  reset(): void {
    this.counts = { head: 0, list: 0, get: 0 };
  }
}

async function expectErrno(promise: Promise<unknown>, expected: number): Promise<void> {
  await expect(promise).rejects.toBeInstanceOf(FuseError);
  await expect(promise).rejects.toMatchObject({ errno: expected });
}

describe('lookups from the parent listing', () => {
  let store: CountingStore;
  let now: number;
  let fs: Filesystem;
  const make = (options: { listPageSize?: number; lookupListPages?: number; negativeLookupMs?: number } = {}) =>
    new Filesystem({
      store,
      prefix: PREFIX,
      attrTimeoutMs: 1000,
      listPageSize: options.listPageSize ?? 1000,
      ...(options.lookupListPages !== undefined && { lookupListPages: options.lookupListPages }),
      ...(options.negativeLookupMs !== undefined && { negativeLookupMs: options.negativeLookupMs }),
      logger: silentLogger(),
      clock: () => now,
    });

  beforeEach(async () => {
    store = new CountingStore();
    now = 1_000_000;
    for (let i = 0; i < 32; i++) await store.put(`${PREFIX}dir/f${i}`, Buffer.from(`file ${i}`));
    await store.put(`${PREFIX}dir/sub/`, Buffer.alloc(0));
    await store.put(`${PREFIX}dir/a`, Buffer.from('a file shadowed by the directory a/'));
    await store.put(`${PREFIX}dir/a/x`, Buffer.from('x'));
    fs = make();
    store.reset();
  });

  afterEach(() => fs.close());

  const lookup = (parent: number, name: string) => fs.lookup(context, parent, name);

  async function readWhole(nodeId: number): Promise<string> {
    const { handle } = await fs.open(context, nodeId, fsConstants.O_RDONLY);
    const data = await fs.read(context, nodeId, handle, 0, 1 << 20);
    await fs.release(context, nodeId, handle, 0);
    return data.toString();
  }

  it('reads N files of a directory cold with 1 LIST and N GETs (not a HEAD and a LIST per file)', async () => {
    const dir = (await lookup(ROOT_NODE_ID, 'dir')).nodeId;
    expect(store.counts).toEqual({ head: 0, list: 1, get: 0 }); // the root's listing
    store.reset();
    const contents = await Promise.all(
      Array.from({ length: 32 }, async (_, i) => {
        const entry = await lookup(dir, `f${i}`);
        expect(entry.attributes.size).toBe(`file ${i}`.length);
        return readWhole(entry.nodeId);
      }),
    );
    expect(contents).toEqual(Array.from({ length: 32 }, (_, i) => `file ${i}`));
    expect(store.counts).toEqual({ head: 0, list: 1, get: 32 });
  });

  it('asks the store about a name the listing lacks by default, so an object another client just put shows at once', async () => {
    const dir = (await lookup(ROOT_NODE_ID, 'dir')).nodeId;
    await lookup(dir, 'f0');
    store.reset();
    await expectErrno(lookup(dir, 'missing'), errno.ENOENT);
    expect(store.counts).toEqual({ head: 1, list: 1, get: 0 });
    await store.put(`${PREFIX}dir/missing`, Buffer.from('late'));
    expect((await lookup(dir, 'missing')).attributes.size).toBe(4);
  });

  it('with negativeLookupMs, answers ENOENT for a name a complete, young listing lacks, without a request', async () => {
    fs = make({ negativeLookupMs: 500 });
    const dir = (await lookup(ROOT_NODE_ID, 'dir')).nodeId;
    await lookup(dir, 'f0');
    store.reset();
    await expectErrno(lookup(dir, 'missing'), errno.ENOENT);
    expect(store.counts).toEqual({ head: 0, list: 0, get: 0 });
    await store.put(`${PREFIX}dir/missing`, Buffer.from('late')); // another client
    await expectErrno(lookup(dir, 'missing'), errno.ENOENT); // the staleness window: negativeLookupMs
    now += 500;
    expect((await lookup(dir, 'missing')).attributes.size).toBe(4);
    expect(store.counts).toEqual({ head: 1, list: 1, get: 0 }); // asked by name: the listing is too old to trust its absences
  });

  it('lets a directory win over an object of the same name, and knows markers as directories', async () => {
    const dir = (await lookup(ROOT_NODE_ID, 'dir')).nodeId;
    const a = await lookup(dir, 'a');
    expect(a.attributes.mode & fsConstants.S_IFMT).toBe(fsConstants.S_IFDIR);
    expect((await lookup(dir, 'sub')).attributes.mode & fsConstants.S_IFMT).toBe(fsConstants.S_IFDIR);
    expect(store.counts.head).toBe(0);
  });

  it('falls back to HEAD + LIST per name in a directory not listed within lookupListPages', async () => {
    fs = make({ listPageSize: 10, lookupListPages: 2 }); // 35 entries: 4 pages
    const dir = (await lookup(ROOT_NODE_ID, 'dir')).nodeId;
    store.reset();
    await Promise.all([lookup(dir, 'f1'), lookup(dir, 'f2')]);
    expect(store.counts).toEqual({ head: 2, list: 2 + 2, get: 0 }); // 2 pages (shared), then HEAD + LIST each
    store.reset();
    await expectErrno(lookup(dir, 'missing'), errno.ENOENT); // the big listing is remembered: no 2 pages again
    expect(store.counts).toEqual({ head: 1, list: 1, get: 0 });
  });

  it('lists no directory for lookups with lookupListPages 0 (HEAD + LIST, as before)', async () => {
    fs = make({ lookupListPages: 0 });
    const dir = (await lookup(ROOT_NODE_ID, 'dir')).nodeId;
    await lookup(dir, 'f1');
    expect(store.counts).toEqual({ head: 2, list: 2, get: 0 });
  });

  describe.each([0, 1000])('stays consistent with changes made through the mount (negativeLookupMs %d)', (negativeLookupMs) => {
    let dir: number;
    beforeEach(async () => {
      fs = make({ negativeLookupMs });
      dir = (await lookup(ROOT_NODE_ID, 'dir')).nodeId;
      await lookup(dir, 'f0'); // the listing of dir is cached and complete
    });

    it('create: the new file is found while written and after its close, with its size', async () => {
      await expectErrno(lookup(dir, 'new'), errno.ENOENT);
      const created = await fs.create(context, dir, 'new', 0o644, fsConstants.O_WRONLY | fsConstants.O_CREAT, 0);
      await fs.write(context, created.entry.nodeId, created.open.handle, 0, Buffer.from('12345'));
      expect((await lookup(dir, 'new')).attributes.size).toBe(5);
      await fs.flush(context, created.entry.nodeId, created.open.handle);
      await fs.release(context, created.entry.nodeId, created.open.handle, 0);
      const found = await lookup(dir, 'new');
      expect(found.attributes.size).toBe(5);
      expect(await readWhole(found.nodeId)).toBe('12345');
    });

    it('truncating open of an existing file: the new size shows after close', async () => {
      const f1 = await lookup(dir, 'f1');
      const { handle } = await fs.open(context, f1.nodeId, fsConstants.O_WRONLY | fsConstants.O_TRUNC);
      await fs.write(context, f1.nodeId, handle, 0, Buffer.from('xy'));
      await fs.flush(context, f1.nodeId, handle);
      await fs.release(context, f1.nodeId, handle, 0);
      expect((await lookup(dir, 'f1')).attributes.size).toBe(2);
    });

    it('mkdir and mknod: found at once', async () => {
      await fs.mkdir(context, dir, 'made', 0o755, 0);
      await fs.mknod(context, dir, 'node', fsConstants.S_IFREG | 0o644, 0, 0);
      expect((await lookup(dir, 'made')).attributes.mode & fsConstants.S_IFMT).toBe(fsConstants.S_IFDIR);
      expect((await lookup(dir, 'node')).attributes.size).toBe(0);
    });

    it('unlink and rmdir: gone at once', async () => {
      await fs.unlink(context, dir, 'f1');
      await fs.rmdir(context, dir, 'sub');
      store.reset();
      await expectErrno(lookup(dir, 'f1'), errno.ENOENT);
      expect(store.counts.head).toBe(negativeLookupMs > 0 ? 0 : 1);
      await expectErrno(lookup(dir, 'sub'), errno.ENOENT); // asked: an object "sub" could show after rmdir of sub/
    });

    it('rename of a file and of a directory: the source is gone, the target found, the tree below it too', async () => {
      await fs.rename(context, dir, { name: 'f2', newParent: dir, newName: 'renamed', flags: 0 });
      await expectErrno(lookup(dir, 'f2'), errno.ENOENT);
      expect(await readWhole((await lookup(dir, 'renamed')).nodeId)).toBe('file 2');
      const a = (await lookup(dir, 'a')).nodeId;
      await lookup(a, 'x'); // the listing of dir/a is cached
      await fs.rename(context, dir, { name: 'a', newParent: ROOT_NODE_ID, newName: 'b', flags: 0 });
      // The directory a/ shadowed the object a: it shows now.
      expect((await lookup(dir, 'a')).attributes.mode & fsConstants.S_IFMT).toBe(fsConstants.S_IFREG);
      const b = (await lookup(ROOT_NODE_ID, 'b')).nodeId;
      expect(await readWhole((await lookup(b, 'x')).nodeId)).toBe('x');
    });
  });
});

describe('READDIRPLUS', () => {
  let store: CountingStore;
  let fs: Filesystem;
  let forgets: number;

  beforeEach(async () => {
    store = new CountingStore();
    for (let i = 0; i < 10; i++) await store.put(`${PREFIX}d/file-${i}`, Buffer.from('x'.repeat(i)));
    await store.put(`${PREFIX}d/sub/`, Buffer.alloc(0));
    fs = new Filesystem({ store, prefix: PREFIX, attrTimeoutMs: 1000, listPageSize: 1000, logger: silentLogger() });
    forgets = 0;
  });

  afterEach(() => fs.close());

  /** Every entry of a READDIRPLUS walk, `size` bytes per reply. */
  async function readAll(nodeId: number, size: number) {
    const { handle } = await fs.opendir(context, nodeId, 0);
    const all = [];
    let offset = 0;
    while (true) {
      const page = await fs.readdirplus(context, nodeId, handle, offset, size);
      if (page.length === 0) break;
      const bytes = page.reduce((total, entry) => total + direntPlusSize(Buffer.byteLength(entry.name)), 0);
      expect(bytes).toBeLessThanOrEqual(size);
      all.push(...page);
      offset = page[page.length - 1]?.nextOffset ?? 0;
    }
    await fs.releasedir(context, nodeId, handle);
    return all;
  }

  it("returns attributes with every entry but '.' and '..', one lookup each, and needs no LOOKUP after", async () => {
    const d = await fs.lookup(context, ROOT_NODE_ID, 'd');
    store.reset();
    const entries = await readAll(d.nodeId, 4096);
    expect(entries.map((entry) => entry.name)).toEqual(['.', '..', ...Array.from({ length: 10 }, (_, i) => `file-${i}`), 'sub']);
    expect(entries.slice(0, 2).map((entry) => entry.entry)).toEqual([undefined, undefined]);
    const file3 = entries.find((entry) => entry.name === 'file-3');
    expect(file3?.entry?.attributes.size).toBe(3);
    expect(file3?.ino).toBe(file3?.entry?.nodeId);
    expect(entries.find((entry) => entry.name === 'sub')?.entry?.attributes.mode).toBe(fsConstants.S_IFDIR | 0o777);
    expect(store.counts).toEqual({ head: 0, list: 1, get: 0 });
    // Every returned node holds exactly one lookup: one FORGET of 1 frees it.
    const before = fs.inodes.size;
    for (const entry of entries) {
      if (!entry.entry) continue;
      fs.forget(entry.entry.nodeId, 1);
      forgets++;
    }
    expect(forgets).toBe(11);
    expect(fs.inodes.size).toBe(before - 11);
  });

  it('counts only the entries that fit in each reply, however small', async () => {
    const d = await fs.lookup(context, ROOT_NODE_ID, 'd');
    const entries = await readAll(d.nodeId, direntPlusSize(6) * 2); // two entries per reply at most
    expect(entries).toHaveLength(13);
    const lookups = new Map<number, number>();
    for (const entry of entries) if (entry.entry) lookups.set(entry.entry.nodeId, (lookups.get(entry.entry.nodeId) ?? 0) + 1);
    expect([...lookups.values()].every((count) => count === 1)).toBe(true);
    const again = await readAll(d.nodeId, 4096); // a second listing: the same nodes, one more lookup each
    for (const entry of again) if (entry.entry) expect(lookups.has(entry.entry.nodeId)).toBe(true);
    for (const id of lookups.keys()) fs.forget(id, 1);
    expect(fs.inodes.size).toBe(2 + 11); // root, d, and the entries still held once
    for (const id of lookups.keys()) fs.forget(id, 1);
    expect(fs.inodes.size).toBe(2);
  });
});
