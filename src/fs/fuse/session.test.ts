import { constants as osConstants } from 'node:os';
import { silentLogger } from '../../log/logger';
import { FAKE_CONNECTION_ID, FakeKernel } from './fake-kernel';
import { FuseError, type FuseOperations } from './operations';
import { decodeDirents, decodeDirentsPlus, direntPlusSize, DirentType, InitFlag, Opcode, Size, type Attributes } from './protocol';
import { DEFAULT_INIT_FLAGS, FuseSession, type FuseSessionOptions } from './session';

const { errno } = osConstants;

const options: FuseSessionOptions = {
  mountpoint: '/mnt/test',
  fsname: 's3://bucket/prefix',
  subtype: 'granary',
  readOnly: true,
  defaultPermissions: true,
  deviceReaders: 3,
  maxBackground: 64,
  maxReadahead: 1 << 20,
  unmountTimeoutMs: 1000,
  ownerUid: 0,
  ownerGid: 0,
};

const attributes: Attributes = { ino: 2, size: 3, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, mode: 0o100644, nlink: 1, uid: 0, gid: 0, blksize: 4096 };

const nameBody = (name: string) => Buffer.from(`${name}\0`);

function readBody(handle: number, offset: number, size: number): Buffer {
  const body = Buffer.alloc(Size.READ_IN);
  body.writeBigUInt64LE(BigInt(handle), 0);
  body.writeBigUInt64LE(BigInt(offset), 8);
  body.writeUInt32LE(size, 16);
  return body;
}

describe('FuseSession', () => {
  let kernel: FakeKernel;
  let session: FuseSession | undefined;

  beforeEach(() => {
    kernel = new FakeKernel();
  });

  afterEach(async () => {
    await session?.unmount();
    session = undefined;
  });

  async function start(operations: FuseOperations, extra: Partial<FuseSessionOptions> = {}) {
    session = new FuseSession({ ...options, ...extra }, operations, silentLogger(), kernel);
    return session.mount();
  }

  it('mounts with allow_other, nosuid, nodev, default_permissions and ro, and answers INIT with its own limits', async () => {
    const protocol = await start({});
    expect(kernel.mounts[0]).toMatchObject({ mountpoint: '/mnt/test', type: 'fuse.granary', source: 's3://bucket/prefix' });
    expect(kernel.mounts[0]?.options).toEqual(['rootmode=40000', 'user_id=0', 'group_id=0', 'allow_other', 'nosuid', 'nodev', 'default_permissions', 'ro']);
    // No readdirplus handler: READDIRPLUS is not agreed, or the kernel would send it and get ENOSYS.
    expect(protocol).toEqual({ major: 7, minor: 38, flags: DEFAULT_INIT_FLAGS & ~(InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO), maxReadahead: 128 * 1024 });
    const init = [...kernel.captured.values()][0];
    expect(init?.header.error).toBe(0);
    expect(init?.body.length).toBe(Size.INIT_OUT);
    expect(init?.body.readUInt32LE(20)).toBe(1 << 20); // max_write
    expect(init?.body.readUInt16LE(28)).toBe(256); // max_pages
    expect((init?.body.readUInt32LE(12) ?? 0) & InitFlag.DO_READDIRPLUS).toBe(0);
  });

  it('answers ENOSYS for a missing handler or unknown opcode, and nothing for FORGET/INTERRUPT', async () => {
    const forgets: Array<[number, number]> = [];
    await start({ forget: (nodeId, lookups) => forgets.push([nodeId, lookups]) });
    expect((await kernel.request(Opcode.GETATTR, 1, Buffer.alloc(16))).header.error).toBe(-errno.ENOSYS);
    expect((await kernel.request(4242, 1)).header.error).toBe(-errno.ENOSYS);
    const forget = Buffer.alloc(8);
    forget.writeBigUInt64LE(2n);
    const forgetId = kernel.enqueue(Opcode.FORGET, 5, forget);
    const batch = Buffer.alloc(8 + 16);
    batch.writeUInt32LE(1, 0);
    batch.writeBigUInt64LE(6n, 8);
    batch.writeBigUInt64LE(1n, 16);
    const batchId = kernel.enqueue(Opcode.BATCH_FORGET, 0, batch);
    const interruptId = kernel.enqueue(Opcode.INTERRUPT, 0, Buffer.alloc(8));
    // A later request's reply proves the earlier ones were processed.
    await kernel.request(4243, 1);
    expect(forgets).toEqual([[5, 2], [6, 1]]);
    for (const id of [forgetId, batchId, interruptId]) expect(kernel.captured.has(id)).toBe(false);
  });

  it('turns FuseError into its errno and anything else into EIO', async () => {
    await start({
      lookup: async (_context, _parent, name) => {
        if (name === 'missing') throw new FuseError(errno.ENOENT);
        throw new Error('boom');
      },
    });
    expect((await kernel.request(Opcode.LOOKUP, 1, nameBody('missing'))).header.error).toBe(-errno.ENOENT);
    expect((await kernel.request(Opcode.LOOKUP, 1, nameBody('other'))).header.error).toBe(-errno.EIO);
  });

  it('passes names, credentials and node ids through, and encodes the entry', async () => {
    const seen: unknown[] = [];
    await start({
      lookup: async (context, parent, name) => {
        seen.push([context.uid, context.gid, parent, name]);
        return { nodeId: 2, generation: 0, entryTimeoutMs: 1000, attrTimeoutMs: 1000, attributes };
      },
    });
    const reply = await kernel.request(Opcode.LOOKUP, 1, nameBody('a.txt'), { uid: 65534, gid: 65534, pid: 9 });
    expect(seen).toEqual([[65534, 65534, 1, 'a.txt']]);
    expect(reply.body.length).toBe(Size.ENTRY_OUT);
    expect(reply.body.readBigUInt64LE(0)).toBe(2n);
  });

  it('serves READ with the data as the body, and READDIR packed to the requested size', async () => {
    const names = Array.from({ length: 500 }, (_, i) => `file-${i}`);
    await start({
      read: async (_context, _node, _handle, offset, size) => Buffer.from('hello world').subarray(offset, offset + size),
      readdir: async (_context, _node, _handle, offset) =>
        names.slice(offset).map((name, i) => ({ ino: 10 + offset + i, name, type: DirentType.REGULAR, nextOffset: offset + i + 1 })),
    });
    const read = await kernel.request(Opcode.READ, 2, readBody(1, 6, 100));
    expect(read.body.toString()).toBe('world');
    const listed: string[] = [];
    let offset = 0;
    while (true) {
      const page = decodeDirents((await kernel.request(Opcode.READDIR, 1, readBody(1, offset, 4096))).body);
      if (page.length === 0) break;
      listed.push(...page.map((entry) => entry.name));
      offset = page[page.length - 1]?.nextOffset ?? 0;
    }
    expect(listed).toEqual(names);
  });

  it('agrees READDIRPLUS when the handler serves it, and sends its entries with their entry_out', async () => {
    const sizes: number[] = [];
    const protocol = await start({
      readdirplus: async (_context, _node, _handle, offset, size) => {
        sizes.push(size);
        return offset > 0 ? [] : [
          { ino: 1, name: '.', type: DirentType.DIRECTORY, nextOffset: 1 },
          { ino: 2, name: 'f', type: DirentType.REGULAR, nextOffset: 2, entry: { nodeId: 2, generation: 0, entryTimeoutMs: 1000, attrTimeoutMs: 1000, attributes } },
        ];
      },
    });
    expect(protocol.flags & (InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO)).toBe(InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO);
    const reply = await kernel.request(Opcode.READDIRPLUS, 1, readBody(1, 0, 4096));
    expect(reply.header.error).toBe(0);
    expect(reply.body.length).toBe(direntPlusSize(1) * 2);
    const entries = decodeDirentsPlus(reply.body);
    expect(entries.map((entry) => [entry.name, entry.entry?.nodeId])).toEqual([['.', undefined], ['f', 2]]);
    expect(entries[1]?.entry?.attributes.size).toBe(3);
    expect(sizes).toEqual([4096]);
  });

  it('keeps many requests in flight with only a few device reads', async () => {
    const pending: Array<() => void> = [];
    await start({ getattr: () => new Promise((resolve) => pending.push(() => resolve({ attributes, timeoutMs: 1 }))) }, { deviceReaders: 2 });
    const ids = Array.from({ length: 20 }, () => kernel.enqueue(Opcode.GETATTR, 2, Buffer.alloc(16)));
    while (pending.length < 20) await new Promise((r) => setImmediate(r));
    pending.forEach((resolve) => resolve());
    const replies = await Promise.all(ids.map((id) => kernel.reply(id)));
    expect(replies.every((reply) => reply.header.error === 0)).toBe(true);
  });

  it('ends when the kernel disconnects (external umount) and closes the device', async () => {
    await start({});
    kernel.disconnect();
    await session?.closed;
    expect(kernel.closed).toBe(true);
    await session?.unmount(); // nothing left to do
    expect(kernel.unmounts).toEqual([]);
  });

  it('unmounts, falling back to a lazy unmount when the plain one fails', async () => {
    await start({});
    kernel.failPlainUnmount = 'target is busy';
    await session?.unmount();
    expect(kernel.unmounts).toEqual([['/mnt/test', false], ['/mnt/test', true]]);
    await session?.closed;
  });

  it('aborts the connection when it outlives the unmount timeout (files still open after umount -l)', async () => {
    await start({}, { unmountTimeoutMs: 20 });
    kernel.keepConnectionOnUnmount = true;
    await session?.unmount();
    await session?.closed;
    expect(kernel.aborts).toEqual([FAKE_CONNECTION_ID]);
  });

  it('refuses a kernel older than the minimum protocol', async () => {
    const old = new FakeKernel();
    old.mount = async (request) => {
      old.mounts.push(request);
      const init = Buffer.alloc(16);
      init.writeUInt32LE(7, 0);
      init.writeUInt32LE(20, 4);
      const id = old.enqueue(Opcode.INIT, 0, init);
      void old.reply(id).then(() => old.disconnect());
      return undefined;
    };
    const refused = new FuseSession(options, {}, silentLogger(), old);
    await expect(refused.mount()).rejects.toThrow(/before FUSE_INIT/);
  });
});
