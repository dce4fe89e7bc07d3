import * as fs from 'node:fs';
import nodeFs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseMountConfig } from '../config/mount';
import { silentLogger } from '../log/logger';
import { MemoryStore } from '../objectstore/memory';
import type { MountEntry } from '../system/mountinfo';
import { FakeKernel } from './fuse/fake-kernel';
import { decodeAttr, decodeDirentsPlus, Opcode, Size } from './fuse/protocol';
import { checkMountpoint, mountFilesystem, MountpointError } from './mount';
import { JOURNAL_FILE, replay, type JournalState } from './takeover/session-journal';

describe('checkMountpoint', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-mountpoint-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('accepts an existing directory that is not a mount and returns its real path', () => {
    expect(checkMountpoint(dir, () => [])).toBe(fs.realpathSync(dir));
  });

  it('refuses a missing path, a file, and an existing mount, saying what to do', () => {
    expect(() => checkMountpoint(path.join(dir, 'nope'), () => [])).toThrow(/does not exist: create the directory/);
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    expect(() => checkMountpoint(path.join(dir, 'file'), () => [])).toThrow(/is not a directory/);
    const mounted: MountEntry = { mountId: 1, device: '0:99', root: '/', mountPoint: fs.realpathSync(dir), fsType: 'fuse.granary', source: 's3://b/p', mountOptions: ['rw'], superOptions: ['rw'] };
    expect(() => checkMountpoint(dir, () => [mounted])).toThrow(MountpointError);
    expect(() => checkMountpoint(dir, () => [mounted])).toThrow(/already a mount \(fuse.granary from s3:\/\/b\/p\): unmount it first/);
  });
});

describe('mountFilesystem keeping a session journal (over the fake kernel)', () => {
  const MOUNTPOINT = '/mnt/volume';
  const FILES = 100;
  let stateDir: string;
  let kernel: FakeKernel;
  let store: MemoryStore;
  /** What the journal's file said at each reply written to the device, and how many journal writes came before it. */
  let replies: Array<{ message: Buffer; journal: JournalState; journalWrites: number }>;
  let journalWrites: number;
  let writes: jest.SpyInstance;
  const opcodes = new Map<bigint, number>();

  beforeEach(async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-journaled-'));
    kernel = new FakeKernel();
    store = new MemoryStore('bucket');
    for (let i = 0; i < FILES; i++) await store.put(`vol/many/f${String(i).padStart(3, '0')}.bin`, Buffer.from(`file ${i}`));
    for (let i = 0; i < 20; i++) await store.put(`vol/small-${i}.txt`, Buffer.from('small'));
    replies = [];
    journalWrites = 0;
    opcodes.clear();
    const journalFile = path.join(stateDir, JOURNAL_FILE);
    const realWrite = nodeFs.writeSync;
    writes = jest.spyOn(nodeFs, 'writeSync').mockImplementation(((fd: number, ...rest: unknown[]) => {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === journalFile) journalWrites++;
      return (realWrite as (...args: unknown[]) => number)(fd, ...rest);
    }) as typeof nodeFs.writeSync);
    // Every process's device: each reply notes what the journal holds at the moment it is written.
    const adopt = kernel.adoptDevice.bind(kernel);
    kernel.adoptDevice = () => {
      const device = adopt();
      const write = device.write.bind(device);
      device.write = (chunks) => {
        replies.push({ message: Buffer.concat(chunks), journal: replay(fs.existsSync(journalFile) ? fs.readFileSync(journalFile, 'utf8') : ''), journalWrites });
        write(chunks);
      };
      return device;
    };
  });

  afterEach(() => {
    writes.mockRestore();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  const mount = (takeover = false) => mountFilesystem(parseMountConfig({ source: 's3://bucket/vol', mountpoint: MOUNTPOINT, stateDir }), {
    mountpoint: MOUNTPOINT, fsname: 's3://bucket/vol', store, prefix: 'vol/', logger: silentLogger(), fuseSystem: kernel, fuseFd: 5,
    ...(takeover && { takeover: { since: Date.now() } }),
  });
  const send = (opcode: number, nodeId: number, body?: Buffer) => {
    const unique = kernel.enqueue(opcode, nodeId, body);
    opcodes.set(unique, opcode);
    return unique;
  };
  const request = async (opcode: number, nodeId: number, body?: Buffer) => {
    const reply = await kernel.reply(send(opcode, nodeId, body));
    expect(reply.header.error).toBe(0);
    return reply.body;
  };
  const handleBody = (handle: bigint, offset = 0, size = 0) => {
    const body = Buffer.alloc(Size.READ_IN);
    body.writeBigUInt64LE(handle, 0);
    body.writeBigUInt64LE(BigInt(offset), 8);
    body.writeUInt32LE(size, 16);
    return body;
  };
  const nameBody = (name: string) => Buffer.from(`${name}\0`);

  /** The node ids and handles a reply gives the kernel. */
  function heldBy(opcode: number | undefined, body: Buffer): { nodes: bigint[]; handles: bigint[] } {
    switch (opcode) {
      case Opcode.LOOKUP:
        return { nodes: [body.readBigUInt64LE(0)], handles: [] };
      case Opcode.OPEN:
      case Opcode.OPENDIR:
        return { nodes: [], handles: [body.readBigUInt64LE(0)] };
      case Opcode.READDIRPLUS:
        return { nodes: decodeDirentsPlus(body).flatMap((entry) => (entry.entry ? [BigInt(entry.entry.nodeId)] : [])), handles: [] };
      default:
        return { nodes: [], handles: [] };
    }
  }

  it('writes a listing\'s new nodes with one write, never sends a reply before its records, and a successor maps them all again', async () => {
    const first = await mount();
    expect(first.mountpoint).toBe(MOUNTPOINT);
    const directory = (await request(Opcode.LOOKUP, 1, nameBody('many'))).readBigUInt64LE(0);
    const listing = (await request(Opcode.OPENDIR, Number(directory), Buffer.alloc(Size.OPEN_IN))).readBigUInt64LE(0);
    const before = journalWrites;
    const entries = decodeDirentsPlus(await request(Opcode.READDIRPLUS, Number(directory), handleBody(listing, 0, 64 * 1024)));
    // (a) One write for the whole listing: its 100 new nodes.
    expect(entries.filter((entry) => entry.entry)).toHaveLength(FILES);
    expect(journalWrites - before).toBe(1);
    // Many requests in flight at once, their records and replies interleaved.
    const lookups = Array.from({ length: 20 }, (_, i) => send(Opcode.LOOKUP, 1, nameBody(`small-${i}.txt`)));
    const file = entries.find((entry) => entry.name === 'f050.bin')?.entry?.nodeId as number;
    const opened = send(Opcode.OPEN, file, Buffer.alloc(Size.OPEN_IN));
    await Promise.all([...lookups, opened].map((unique) => kernel.reply(unique)));
    const handle = (await kernel.reply(opened)).body.readBigUInt64LE(0);
    expect((await request(Opcode.READ, file, handleBody(handle, 0, 100))).toString()).toBe('file 50');
    // A release is no reply's concern: it waits for the next write.
    const beforeRelease = journalWrites;
    await request(Opcode.RELEASEDIR, Number(directory), handleBody(listing));
    expect(journalWrites).toBe(beforeRelease);
    // (b) Every reply found in the file what it gives the kernel: the session (INIT's first), its nodes and handles.
    expect(replies.length).toBeGreaterThan(25);
    for (const { message, journal } of replies) {
      const unique = message.readBigUInt64LE(8);
      expect(journal.session?.mountpoint).toBe(MOUNTPOINT);
      const held = heldBy(opcodes.get(unique), message.subarray(Size.OUT_HEADER));
      for (const node of held.nodes) expect(journal.nodes.has(Number(node))).toBe(true);
      for (const open of held.handles) expect(journal.handles.has(Number(open))).toBe(true);
    }
    // Fewer writes than replies: a reply that gives nothing new writes nothing.
    expect(journalWrites).toBeLessThan(replies.length);

    // (c) The process dies (kill -9): what it wrote is all a successor has.
    kernel.kill(kernel.devices[0] as (typeof kernel.devices)[number]);
    const successor = await mount(true);
    try {
      expect((await request(Opcode.READ, file, handleBody(handle, 0, 100))).toString()).toBe('file 50');
      const attributes = await request(Opcode.GETATTR, Number(entries[10]?.entry?.nodeId), Buffer.alloc(Size.GETATTR_IN));
      expect(decodeAttr(attributes, 16).size).toBe(Buffer.byteLength('file 8'));
      expect((await request(Opcode.LOOKUP, Number(directory), nameBody('f050.bin'))).readBigUInt64LE(0)).toBe(BigInt(file));
      const fresh = (await request(Opcode.LOOKUP, 1, nameBody('small-0.txt'))).readBigUInt64LE(0);
      expect(fresh).toBe((await kernel.reply(lookups[0] as bigint)).body.readBigUInt64LE(0));
    } finally {
      await successor.unmount();
    }
  });

  it('gives the journal up when its directory cannot be written, and serves on: replies never fail for it', async () => {
    const served = await mount();
    try {
      const journalFile = path.join(stateDir, JOURNAL_FILE);
      // The state disk fills up: the next journal write fails.
      const realWrite = writes.getMockImplementation() as typeof nodeFs.writeSync;
      writes.mockImplementation(((fd: number, ...rest: unknown[]) => {
        if (fs.readlinkSync(`/proc/self/fd/${fd}`) === journalFile) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        return (realWrite as (...args: unknown[]) => number)(fd, ...rest);
      }) as typeof nodeFs.writeSync);
      const directory = (await request(Opcode.LOOKUP, 1, nameBody('many'))).readBigUInt64LE(0);
      const listing = (await request(Opcode.OPENDIR, Number(directory), Buffer.alloc(Size.OPEN_IN))).readBigUInt64LE(0);
      const entries = decodeDirentsPlus(await request(Opcode.READDIRPLUS, Number(directory), handleBody(listing, 0, 64 * 1024)));
      expect(entries.filter((entry) => entry.entry)).toHaveLength(FILES);
      // No journal a successor could misread is left behind.
      expect(fs.existsSync(journalFile)).toBe(false);
    } finally {
      writes.mockRestore();
      await served.unmount();
    }
  });
});
