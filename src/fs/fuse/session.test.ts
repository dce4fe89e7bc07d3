import { constants as osConstants } from 'node:os';
import { silentLogger } from '../../log/logger';
import { FAKE_CONNECTION_ID, FakeKernel } from './fake-kernel';
import { FuseError, type EntryReply, type FuseOperations, type RequestContext } from './operations';
import { decodeDirents, decodeDirentsPlus, direntPlusSize, DirentType, InitFlag, Opcode, Size, UNIQUE_RESEND_BIT, type Attributes } from './protocol';

/** A promise and the functions that settle it: a gate a test opens when it chooses. */
function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void; fail: (error: unknown) => void } {
  let open!: (value: T) => void;
  let fail!: (error: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => ((open = resolve), (fail = reject)));
  return { promise, open, fail };
}
import { DeadlineExceeded, RequestInterrupted, type OperationDeadlines } from './deadlines';
import { DEFAULT_INIT_FLAGS, FuseSession, type FuseSessionOptions, type NegotiatedProtocol } from './session';

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
    expect(protocol).toEqual({ major: 7, minor: 38, flags: DEFAULT_INIT_FLAGS & ~(InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO), maxReadahead: 128 * 1024, kernelCanResend: true });
    const init = [...kernel.captured.values()][0];
    expect(init?.header.error).toBe(0);
    expect(init?.body.length).toBe(Size.INIT_OUT);
    expect(init?.body.readUInt32LE(20)).toBe(1 << 20); // max_write
    expect(init?.body.readUInt16LE(28)).toBe(256); // max_pages
    expect((init?.body.readUInt32LE(12) ?? 0) & InitFlag.DO_READDIRPLUS).toBe(0);
  });

  it('counts as initialized only once the kernel has the INIT answer (what the mount does next must follow INIT\'s limits)', async () => {
    let answeredAtInit: boolean | undefined;
    let answeredAtMount: boolean | undefined;
    session = new FuseSession(options, { init: () => (answeredAtInit = kernel.captured.size > 0) }, silentLogger(), kernel);
    const mounted = session.mount().then(() => (answeredAtMount = kernel.captured.size > 0));
    await mounted;
    expect({ answeredAtInit, answeredAtMount }).toEqual({ answeredAtInit: true, answeredAtMount: true });
  });

  it('answers ENOSYS for a missing handler or unknown opcode, nothing for FORGET, and EAGAIN for an INTERRUPT of a request it has not seen', async () => {
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
    // The kernel then sends the INTERRUPT again while the request waits, or drops it once the request was answered.
    const interruptId = kernel.interrupt(4000n);
    // A later request's reply proves the earlier ones were processed.
    await kernel.request(4243, 1);
    expect(forgets).toEqual([[5, 2], [6, 1]]);
    for (const id of [forgetId, batchId]) expect(kernel.captured.has(id)).toBe(false);
    expect(kernel.captured.get(interruptId)?.header.error).toBe(-errno.EAGAIN);
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

  it('runs beforeReply right before each reply is written; when it fails, a successful answer is undone and answered EIO', async () => {
    const events: string[] = [];
    const forgets: Array<[number, number]> = [];
    let failing = false;
    await start({
      lookup: async (_context, _parent, name) => {
        events.push(`handled ${name}`);
        if (name === 'missing') throw new FuseError(errno.ENOENT);
        return { nodeId: 2, generation: 0, entryTimeoutMs: 1000, attrTimeoutMs: 1000, attributes };
      },
      forget: (nodeId, lookups) => forgets.push([nodeId, lookups]),
    }, {
      beforeReply: () => {
        events.push('beforeReply');
        if (failing) throw new Error('the journal cannot be written');
      },
    });
    const device = kernel.devices[0] as (typeof kernel.devices)[number];
    const write = device.write.bind(device);
    device.write = (chunks) => {
      events.push('write');
      write(chunks);
    };
    const lookup = async (name: string) => (await kernel.request(Opcode.LOOKUP, 1, nameBody(name))).header.error;
    events.length = 0; // INIT's
    expect(await lookup('a')).toBe(0);
    expect(await lookup('missing')).toBe(-errno.ENOENT);
    expect(events.splice(0)).toEqual(['handled a', 'beforeReply', 'write', 'handled missing', 'beforeReply', 'write']);
    failing = true;
    expect(await lookup('a')).toBe(-errno.EIO);
    expect(forgets).toEqual([[2, 1]]);
    // An error reply holds nothing to keep: it goes.
    expect(await lookup('missing')).toBe(-errno.ENOENT);
    expect(events.splice(0)).toEqual(['handled a', 'beforeReply', 'write', 'handled missing', 'beforeReply', 'write']);
    failing = false;
    expect(await lookup('a')).toBe(0);
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

describe('FuseSession: interrupts and deadlines', () => {
  const deadlines: OperationDeadlines = { metadataMs: 30_000, readMs: 60_000, writeMs: 60_000 };
  const entryOf = (nodeId: number): EntryReply => ({ nodeId, generation: 0, entryTimeoutMs: 1000, attrTimeoutMs: 1000, attributes: { ...attributes, ino: nodeId } });
  const fsyncBody = (handle: number) => {
    const body = Buffer.alloc(Size.FSYNC_IN);
    body.writeBigUInt64LE(BigInt(handle), 0);
    return body;
  };
  const writeBody = (handle: number, data: Buffer) => {
    const body = Buffer.alloc(Size.WRITE_IN + data.length);
    body.writeBigUInt64LE(BigInt(handle), 0);
    body.writeUInt32LE(data.length, 16);
    data.copy(body, Size.WRITE_IN);
    return body;
  };
  const releaseBody = (handle: number) => {
    const body = Buffer.alloc(Size.RELEASE_IN);
    body.writeBigUInt64LE(BigInt(handle), 0);
    return body;
  };
  const openBody = () => Buffer.alloc(Size.OPEN_IN);
  let kernel: FakeKernel;
  let session: FuseSession | undefined;

  beforeEach(() => {
    kernel = new FakeKernel();
  });

  afterEach(async () => {
    jest.useRealTimers();
    await session?.unmount();
    session = undefined;
  });

  async function start(operations: FuseOperations) {
    session = new FuseSession({ ...options, deadlines }, operations, silentLogger(), kernel);
    return session.mount();
  }

  /** Waits until the handler has been called (its context recorded), so an INTERRUPT finds the request in flight. */
  async function called(contexts: RequestContext[], count: number): Promise<void> {
    while (contexts.length < count) await new Promise((resolve) => setImmediate(resolve));
  }

  it('answers an interrupted LOOKUP with EINTR at once, aborts its signal, and gives back the lookup its late answer holds', async () => {
    const contexts: RequestContext[] = [];
    const answer = gate<EntryReply>();
    const forgets: Array<[number, number]> = [];
    await start({
      lookup: (context) => {
        contexts.push(context);
        return answer.promise;
      },
      forget: (nodeId, lookups) => forgets.push([nodeId, lookups]),
    });
    const unique = kernel.enqueue(Opcode.LOOKUP, 1, nameBody('slow'));
    await called(contexts, 1);
    const interruptId = kernel.interrupt(unique);
    expect((await kernel.reply(unique)).header.error).toBe(-errno.EINTR);
    expect(contexts[0]?.signal.reason).toBeInstanceOf(RequestInterrupted);
    // The INTERRUPT of a request in flight is not answered itself.
    expect(kernel.captured.has(interruptId)).toBe(false);
    answer.open(entryOf(7));
    await kernel.request(4242, 1); // a later request's reply: the late answer has been handled by then
    expect(forgets).toEqual([[7, 1]]);
  });

  it('discards the handle of an OPEN and a CREATE answered late, and releases an OPENDIR\'s', async () => {
    const contexts: RequestContext[] = [];
    const opened = gate<{ handle: number }>();
    const created = gate<{ entry: EntryReply; open: { handle: number } }>();
    const dirOpened = gate<{ handle: number }>();
    const discarded: Array<[number, number]> = [];
    const forgets: Array<[number, number]> = [];
    const releasedDirs: number[] = [];
    await start({
      open: (context) => (contexts.push(context), opened.promise),
      create: (context) => (contexts.push(context), created.promise),
      opendir: (context) => (contexts.push(context), dirOpened.promise),
      discard: (nodeId, handle) => discarded.push([nodeId, handle]),
      forget: (nodeId, lookups) => forgets.push([nodeId, lookups]),
      releasedir: async (_context, _nodeId, handle) => void releasedDirs.push(handle),
    });
    const open = kernel.enqueue(Opcode.OPEN, 5, openBody());
    const createBody = Buffer.concat([Buffer.alloc(Size.CREATE_IN), nameBody('new')]);
    const create = kernel.enqueue(Opcode.CREATE, 1, createBody);
    const opendir = kernel.enqueue(Opcode.OPENDIR, 1, openBody());
    await called(contexts, 3);
    for (const unique of [open, create, opendir]) kernel.interrupt(unique);
    for (const unique of [open, create, opendir]) expect((await kernel.reply(unique)).header.error).toBe(-errno.EINTR);
    opened.open({ handle: 11 });
    created.open({ entry: entryOf(8), open: { handle: 12 } });
    dirOpened.open({ handle: 13 });
    await kernel.request(4242, 1);
    expect(discarded).toEqual([[5, 11], [8, 12]]);
    expect(forgets).toEqual([[8, 1]]);
    expect(releasedDirs).toEqual([13]);
  });

  it('leaves an interrupted WRITE to its handler, which answers EINTR when it took nothing', async () => {
    const contexts: RequestContext[] = [];
    await start({
      write: (context) => {
        contexts.push(context);
        return new Promise((_resolve, reject) => context.signal.addEventListener('abort', () => reject(context.signal.reason)));
      },
    });
    const unique = kernel.enqueue(Opcode.WRITE, 5, writeBody(3, Buffer.from('data')));
    await called(contexts, 1);
    kernel.interrupt(unique);
    expect((await kernel.reply(unique)).header.error).toBe(-errno.EINTR);
  });

  it('answers an interrupted WRITE with the bytes its handler took before it stopped', async () => {
    const contexts: RequestContext[] = [];
    await start({
      write: (context) => {
        contexts.push(context);
        return new Promise((resolve) => context.signal.addEventListener('abort', () => resolve(2)));
      },
    });
    const unique = kernel.enqueue(Opcode.WRITE, 5, writeBody(3, Buffer.from('data')));
    await called(contexts, 1);
    kernel.interrupt(unique);
    const reply = await kernel.reply(unique);
    expect(reply.header.error).toBe(0);
    expect(reply.body.readUInt32LE(0)).toBe(2);
  });

  it('answers EIO at the deadline: a LOOKUP and a READ in their whole time, a WRITE too, whatever their handlers still wait for', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const contexts: RequestContext[] = [];
    const never = () => new Promise<never>(() => undefined);
    await start({
      lookup: (context) => (contexts.push(context), never()),
      read: (context) => (contexts.push(context), never()),
      write: (context) => (contexts.push(context), never()),
    });
    const lookup = kernel.enqueue(Opcode.LOOKUP, 1, nameBody('hung'));
    const read = kernel.enqueue(Opcode.READ, 5, readBody(3, 0, 4096));
    const write = kernel.enqueue(Opcode.WRITE, 5, writeBody(3, Buffer.from('x')));
    await called(contexts, 3);
    await jest.advanceTimersByTimeAsync(deadlines.metadataMs - 1);
    expect(kernel.captured.has(lookup)).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(kernel.captured.get(lookup)?.header.error).toBe(-errno.EIO);
    expect(contexts[0]?.signal.reason).toBeInstanceOf(DeadlineExceeded);
    expect(kernel.captured.has(read)).toBe(false);
    await jest.advanceTimersByTimeAsync(deadlines.readMs - deadlines.metadataMs);
    expect(kernel.captured.get(read)?.header.error).toBe(-errno.EIO);
    expect(kernel.captured.get(write)?.header.error).toBe(-errno.EIO);
    expect(contexts[2]?.signal.reason).toBeInstanceOf(DeadlineExceeded);
  });

  it("answers at once the kernel's fresh LOOKUP of a name whose LOOKUP just passed its deadline and still waits, until that one is done or a second has passed", async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const contexts: RequestContext[] = [];
    const names: string[] = [];
    const stalled = new Map([['dir', gate<EntryReply>()], ['stuck', gate<EntryReply>()]]);
    await start({
      lookup: (context, parent, name) => {
        contexts.push(context);
        names.push(`${parent}/${name}`);
        const first = stalled.get(name);
        stalled.delete(name);
        return first ? first.promise : Promise.resolve(entryOf(names.length + 10));
      },
      forget: () => undefined,
    });
    const dirGate = stalled.get('dir')!;
    const first = [kernel.enqueue(Opcode.LOOKUP, 1, nameBody('dir')), kernel.enqueue(Opcode.LOOKUP, 1, nameBody('stuck'))];
    await called(contexts, 2);
    await jest.advanceTimersByTimeAsync(deadlines.metadataMs);
    for (const unique of first) expect(kernel.captured.get(unique)?.header.error).toBe(-errno.EIO);
    // The revalidation failed: the kernel looks the names up afresh straight away, and is answered at once.
    const retries = [kernel.enqueue(Opcode.LOOKUP, 1, nameBody('dir')), kernel.enqueue(Opcode.LOOKUP, 1, nameBody('stuck'))];
    for (const unique of retries) expect((await kernel.reply(unique)).header.error).toBe(-errno.EIO);
    expect(names).toEqual(['1/dir', '1/stuck']);
    // Another name, and the same name under another parent, go to the handler.
    const other = [kernel.enqueue(Opcode.LOOKUP, 1, nameBody('other')), kernel.enqueue(Opcode.LOOKUP, 2, nameBody('dir'))];
    for (const unique of other) expect((await kernel.reply(unique)).header.error).toBe(0);
    // The stalled LOOKUP of dir is done (the store answered): dir goes to the handler again, within the second.
    dirGate.open(entryOf(7));
    await kernel.request(4242, 1);
    const dirAgain = kernel.enqueue(Opcode.LOOKUP, 1, nameBody('dir'));
    expect((await kernel.reply(dirAgain)).header.error).toBe(0);
    // stuck still waits, but a second has passed: it goes to the handler again.
    await jest.advanceTimersByTimeAsync(1000);
    const stuckAgain = kernel.enqueue(Opcode.LOOKUP, 1, nameBody('stuck'));
    expect((await kernel.reply(stuckAgain)).header.error).toBe(0);
    expect(names).toEqual(['1/dir', '1/stuck', '1/other', '2/dir', '1/dir', '1/stuck']);
  });

  it('still answers EIO at its deadline a WRITE whose handler ignored the interrupt, telling the handler through `expired`', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const contexts: RequestContext[] = [];
    await start({ write: (context) => (contexts.push(context), new Promise<never>(() => undefined)) });
    const write = kernel.enqueue(Opcode.WRITE, 5, writeBody(3, Buffer.from('x')));
    await called(contexts, 1);
    kernel.interrupt(write);
    await jest.advanceTimersByTimeAsync(1000);
    expect(contexts[0]?.signal.reason).toBeInstanceOf(RequestInterrupted);
    expect(contexts[0]?.expired.aborted).toBe(false);
    expect(kernel.captured.has(write)).toBe(false);
    await jest.advanceTimersByTimeAsync(deadlines.writeMs);
    expect(kernel.captured.get(write)?.header.error).toBe(-errno.EIO);
    expect(contexts[0]?.expired.reason).toBeInstanceOf(DeadlineExceeded);
  });

  it('starts an FSYNC\'s deadline over at each progress, and answers EIO once the handler makes none for writeMs', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const contexts: RequestContext[] = [];
    await start({ fsync: (context) => (contexts.push(context), new Promise<void>(() => undefined)) });
    const fsync = kernel.enqueue(Opcode.FSYNC, 5, fsyncBody(3));
    await called(contexts, 1);
    // Five parts acknowledged, each just inside the deadline: five times the deadline in all, still waiting.
    for (let part = 0; part < 5; part++) {
      await jest.advanceTimersByTimeAsync(deadlines.writeMs - 1);
      contexts[0]?.progress();
    }
    expect(kernel.captured.has(fsync)).toBe(false);
    await jest.advanceTimersByTimeAsync(deadlines.writeMs);
    expect(kernel.captured.get(fsync)?.header.error).toBe(-errno.EIO);
  });

  it('gives RELEASE no deadline: nobody waits for it, and what it publishes must finish', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const contexts: RequestContext[] = [];
    const released = gate();
    await start({ release: (context) => (contexts.push(context), released.promise) });
    const release = kernel.enqueue(Opcode.RELEASE, 5, releaseBody(3));
    await called(contexts, 1);
    await jest.advanceTimersByTimeAsync(10 * deadlines.writeMs);
    expect(kernel.captured.has(release)).toBe(false);
    expect(contexts[0]?.signal.aborted).toBe(false);
    released.open();
    expect((await kernel.reply(release)).header.error).toBe(0);
  });
});

describe('FuseSession: taking over a connection whose serving process died', () => {
  const entryOf = (nodeId: number): EntryReply => ({ nodeId, generation: 0, entryTimeoutMs: 1000, attrTimeoutMs: 1000, attributes: { ...attributes, ino: nodeId } });
  const sessions: FuseSession[] = [];

  afterEach(async () => {
    for (const session of sessions.splice(0)) await session.unmount();
  });

  /** A first process: mounts, answers LOOKUPs of "a" at once and leaves those of "slow" unanswered; resolves with what INIT agreed. */
  async function firstProcess(kernel: FakeKernel, seen: string[], made?: (session: FuseSession) => void): Promise<NegotiatedProtocol> {
    let agreed: NegotiatedProtocol | undefined;
    const first = new FuseSession({ ...options, deviceFd: 5, agreed: (protocol) => (agreed = protocol) }, {
      lookup: (_context, _parent, name) => {
        seen.push(`first ${name}`);
        return name === 'slow' ? new Promise<never>(() => undefined) : Promise.resolve(entryOf(2));
      },
    }, silentLogger(), kernel);
    sessions.push(first);
    made?.(first);
    const protocol = await first.mount();
    expect(agreed).toEqual(protocol);
    return protocol;
  }

  it('serves the same connection without INIT and has the kernel send again what the dead process had read', async () => {
    const kernel = new FakeKernel();
    const seen: string[] = [];
    const protocol = await firstProcess(kernel, seen);
    expect((await kernel.request(Opcode.LOOKUP, 1, nameBody('a'))).header.error).toBe(0);
    const slow = kernel.enqueue(Opcode.LOOKUP, 1, nameBody('slow'));
    while (!seen.includes('first slow')) await new Promise((resolve) => setImmediate(resolve));
    kernel.kill(kernel.devices[0] as (typeof kernel.devices)[number]);

    const successor = new FuseSession({ ...options, deviceFd: 5 }, {
      lookup: async (_context, _parent, name) => {
        seen.push(`successor ${name}`);
        return entryOf(3);
      },
    }, silentLogger(), kernel);
    sessions.push(successor);
    expect(await successor.adopt(protocol)).toEqual({ resent: true, failed: 0 });
    expect(successor.negotiated).toEqual(protocol);
    expect(kernel.resends).toBe(1);
    // The request the dead process had read is answered by its successor, under its id marked as resent.
    const answer = await kernel.reply(slow | UNIQUE_RESEND_BIT);
    expect(answer.header.error).toBe(0);
    expect(answer.body.readBigUInt64LE(0)).toBe(3n);
    expect((await kernel.request(Opcode.LOOKUP, 1, nameBody('b'))).header.error).toBe(0);
    expect(seen).toEqual(['first a', 'first slow', 'successor slow', 'successor b']);
    // One INIT in all: the mount's.
    expect(kernel.mounts).toHaveLength(1);
  });

  it('without resend (before Linux 6.9) fails with EIO what the dead process had read: in flight at its record, or read after', async () => {
    const kernel = new FakeKernel();
    kernel.initFlags2 = 0;
    const seen: string[] = [];
    let first: FuseSession | undefined;
    const protocol = await firstProcess(kernel, seen, (session) => (first = session));
    expect(protocol.kernelCanResend).toBe(false);
    const before = kernel.enqueue(Opcode.LOOKUP, 1, nameBody('slow'));
    while (seen.length < 1) await new Promise((resolve) => setImmediate(resolve));
    // The dead process's last record: one request in flight.
    const recorded = (first as FuseSession).requestsInFlight();
    expect(recorded).toEqual({ inFlight: [before], highest: before });
    // Read after that record: above its highest.
    const after = kernel.enqueue(Opcode.LOOKUP, 1, nameBody('slow'));
    while (seen.length < 2) await new Promise((resolve) => setImmediate(resolve));
    kernel.kill(kernel.devices[0] as (typeof kernel.devices)[number]);

    const successor = new FuseSession({ ...options, deviceFd: 5 }, { lookup: async () => entryOf(3) }, silentLogger(), kernel);
    sessions.push(successor);
    expect(await successor.adopt(protocol, recorded)).toEqual({ resent: false, failed: 2 });
    expect(kernel.resends).toBe(0);
    expect((await kernel.reply(before)).header.error).toBe(-errno.EIO);
    expect((await kernel.reply(after)).header.error).toBe(-errno.EIO);
    expect((await kernel.request(Opcode.LOOKUP, 1, nameBody('b'))).header.error).toBe(0);
  });
});
