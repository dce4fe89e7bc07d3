import {
  decodeAttr,
  decodeBatchForgetIn,
  decodeDirents,
  decodeDirentsPlus,
  decodeInHeader,
  decodeInitIn,
  decodeReadIn,
  decodeRenameIn,
  decodeSetattrIn,
  decodeWriteIn,
  direntPlusSize,
  direntSize,
  DirentType,
  encodeAttr,
  encodeAttrOut,
  encodeDirents,
  encodeDirentsPlus,
  encodeEntryOut,
  encodeInHeader,
  encodeInitOut,
  encodeOpenOut,
  encodeOutHeader,
  encodeStatfsOut,
  InitFlag,
  Opcode,
  ProtocolError,
  Size,
  type DirectoryEntryPlus,
  type Attributes,
} from './protocol';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

// A file: ino 2, 5 bytes, times 1.5 s / 2 s / 3.25 s after the epoch, mode 0100644, uid 1000, gid 100.
const attributes: Attributes = {
  ino: 2,
  size: 5,
  atimeMs: 1500,
  mtimeMs: 2000,
  ctimeMs: 3250,
  mode: 0o100644,
  nlink: 1,
  uid: 1000,
  gid: 100,
  blksize: 4096,
};

// struct fuse_attr, written out field by field from include/uapi/linux/fuse.h.
const attributesBytes = hex(`
  0200000000000000  0500000000000000  0100000000000000
  0100000000000000  0200000000000000  0300000000000000
  0065cd1d 00000000 80b2e60e
  a4810000 01000000 e8030000 64000000 00000000 00100000 00000000`);

describe('fuse_attr', () => {
  it('is 88 bytes laid out as the kernel header says (blocks derived from size)', () => {
    const buffer = Buffer.alloc(Size.ATTR);
    encodeAttr(buffer, 0, attributes);
    expect(attributesBytes.length).toBe(88);
    expect(buffer.toString('hex')).toBe(attributesBytes.toString('hex'));
  });

  it('round-trips', () => {
    const buffer = Buffer.alloc(Size.ATTR + 8);
    encodeAttr(buffer, 8, { ...attributes, size: 2 ** 40 + 3, mtimeMs: 1_700_000_000_123 });
    expect(buffer.readBigUInt64LE(8 + 8)).toBe(2n ** 40n + 3n); // a u64 above 2^32, little-endian as the kernel reads it
    expect(decodeAttr(buffer, 8)).toEqual({ ...attributes, size: 2 ** 40 + 3, blocks: Math.ceil((2 ** 40 + 3) / 512), mtimeMs: 1_700_000_000_123, rdev: 0 });
  });
});

describe('replies', () => {
  it('fuse_entry_out: node id, generation, validity as seconds + nanoseconds, then the attr', () => {
    const buffer = encodeEntryOut({ nodeId: 7, generation: 0, entryTimeoutMs: 1500, attrTimeoutMs: 250, attributes });
    expect(buffer.length).toBe(128);
    expect(buffer.subarray(0, 40).toString('hex')).toBe(
      hex(`0700000000000000 0000000000000000 0100000000000000 0000000000000000 0065cd1d 80b2e60e`).toString('hex'),
    );
    expect(buffer.subarray(40).equals(attributesBytes)).toBe(true);
  });

  it('fuse_attr_out: validity, padding, attr', () => {
    const buffer = encodeAttrOut({ attributes, timeoutMs: 1000 });
    expect(buffer.length).toBe(104);
    expect(buffer.subarray(0, 16).toString('hex')).toBe('01000000000000000000000000000000');
    expect(buffer.subarray(16).equals(attributesBytes)).toBe(true);
  });

  it('fuse_out_header: total length, negative errno, unique', () => {
    expect(encodeOutHeader(0x0102030405060708n, -2, 8).toString('hex')).toBe('18000000feffffff0807060504030201');
  });

  it('fuse_open_out: handle and open flags', () => {
    expect(encodeOpenOut({ handle: 9, flags: 2 }).toString('hex')).toBe('09000000000000000200000000000000');
  });

  it('fuse_init_out: 64 bytes with u16 max_background/congestion/max_pages', () => {
    const buffer = encodeInitOut({
      major: 7,
      minor: 38,
      maxReadahead: 0x20000,
      flags: InitFlag.ASYNC_READ | InitFlag.MAX_PAGES,
      maxBackground: 64,
      congestionThreshold: 48,
      maxWrite: 1 << 20,
      timeGranularity: 1,
      maxPages: 256,
      flags2: 0,
    });
    expect(buffer.length).toBe(64);
    expect(buffer.subarray(0, 36).toString('hex')).toBe(
      hex(`07000000 26000000 00000200 01004000 4000 3000 00001000 01000000 0001 0000 00000000`).toString('hex'),
    );
    expect(buffer.subarray(36).every((byte) => byte === 0)).toBe(true);
  });

  it('fuse_statfs_out: five u64 counts then bsize, namelen, frsize', () => {
    const buffer = encodeStatfsOut({ blocks: 10, blocksFree: 9, blocksAvailable: 8, files: 7, filesFree: 6, blockSize: 4096, nameLength: 255, fragmentSize: 4096 });
    expect(buffer.length).toBe(80);
    expect(buffer.readBigUInt64LE(0)).toBe(10n);
    expect(buffer.readBigUInt64LE(32)).toBe(6n);
    expect([buffer.readUInt32LE(40), buffer.readUInt32LE(44), buffer.readUInt32LE(48)]).toEqual([4096, 255, 4096]);
  });
});

describe('fuse_dirent', () => {
  const entries = [
    { ino: 1, name: '.', type: DirentType.DIRECTORY, nextOffset: 1 },
    { ino: 5, name: 'hello.txt', type: DirentType.REGULAR, nextOffset: 2 },
  ];

  it('pads each entry to 8 bytes with zeros', () => {
    expect([direntSize(1), direntSize(8), direntSize(9)]).toEqual([32, 32, 40]);
    const { buffer, count } = encodeDirents(entries, 4096);
    expect(count).toBe(2);
    expect(buffer.toString('hex')).toBe(
      hex(`
        0100000000000000 0100000000000000 01000000 04000000 2e00000000000000
        0500000000000000 0200000000000000 09000000 08000000 68656c6c6f2e747874 00000000000000`).toString('hex'),
    );
    expect(decodeDirents(buffer)).toEqual(entries);
  });

  it('stops before the first entry that does not fit', () => {
    expect(encodeDirents(entries, 71)).toMatchObject({ count: 1 });
    expect(encodeDirents(entries, 71).buffer.length).toBe(32);
    expect(encodeDirents(entries, 31).count).toBe(0);
  });

  it('counts names in UTF-8 bytes', () => {
    const { buffer } = encodeDirents([{ ino: 3, name: 'é', type: DirentType.REGULAR, nextOffset: 3 }], 4096);
    expect(buffer.readUInt32LE(16)).toBe(2);
    expect(decodeDirents(buffer)[0]?.name).toBe('é');
  });
});

describe('fuse_direntplus', () => {
  const attributes = { ino: 5, size: 3, atimeMs: 2000, mtimeMs: 2000, ctimeMs: 2000, mode: 0o100666, nlink: 1, uid: 1000, gid: 2000, blksize: 4096 };
  const entries: DirectoryEntryPlus[] = [
    { ino: 1, name: '.', type: DirentType.DIRECTORY, nextOffset: 1 },
    { ino: 5, name: 'a.txt', type: DirentType.REGULAR, nextOffset: 2, entry: { nodeId: 5, generation: 0, entryTimeoutMs: 1500, attrTimeoutMs: 1000, attributes } },
  ];

  it('is fuse_entry_out (128 bytes, zeros for node id 0) then the dirent, padded to 8 bytes', () => {
    expect([direntPlusSize(1), direntPlusSize(5), direntPlusSize(8), direntPlusSize(9)]).toEqual([160, 160, 160, 168]);
    const { buffer, count } = encodeDirentsPlus(entries, 4096);
    expect(count).toBe(2);
    expect(buffer.toString('hex')).toBe(
      hex(`
        ${'00'.repeat(128)}
        0100000000000000 0100000000000000 01000000 04000000 2e00000000000000
        0500000000000000 0000000000000000 0100000000000000 0100000000000000 0065cd1d 00000000
        0500000000000000 0300000000000000 0100000000000000
        0200000000000000 0200000000000000 0200000000000000 00000000 00000000 00000000
        b6810000 01000000 e8030000 d0070000 00000000 00100000 00000000
        0500000000000000 0200000000000000 05000000 08000000 612e747874 000000`).toString('hex'),
    );
    const decoded = decodeDirentsPlus(buffer);
    expect(decoded.map((entry) => ({ ...entry, entry: undefined }))).toEqual(entries.map((entry) => ({ ...entry, entry: undefined })));
    expect(decoded[0]?.entry).toBeUndefined();
    expect(decoded[1]?.entry).toEqual({ nodeId: 5, generation: 0, entryTimeoutMs: 1500, attrTimeoutMs: 1000, attributes: { ...attributes, blocks: 1, rdev: 0 } });
  });

  it('stops before the first entry that does not fit', () => {
    expect(encodeDirentsPlus(entries, 319)).toMatchObject({ count: 1 });
    expect(encodeDirentsPlus(entries, 319).buffer.length).toBe(160);
    expect(encodeDirentsPlus(entries, 320).count).toBe(2);
    expect(encodeDirentsPlus(entries, 159).count).toBe(0);
  });
});

describe('requests', () => {
  it('fuse_in_header round-trips', () => {
    const header = { length: 45, opcode: Opcode.LOOKUP, unique: 2n ** 63n + 5n, nodeId: 1, uid: 65534, gid: 65534, pid: 42, totalExtensionLength: 0 };
    const buffer = encodeInHeader(header);
    expect(buffer.toString('hex')).toBe('2d0000000100000005000000000000800100000000000000feff0000feff00002a00000000000000');
    expect(decodeInHeader(buffer)).toEqual(header);
  });

  it('fuse_init_in reads flags2 only with INIT_EXT', () => {
    const body = hex(`07000000 2d000000 00000200 ${'ffffffff'} 01000000`);
    expect(decodeInitIn(body)).toEqual({ major: 7, minor: 45, maxReadahead: 0x20000, flags: 0xffffffff, flags2: 1 });
    const old = hex(`07000000 1f000000 00000200 01000000`);
    expect(decodeInitIn(old)).toEqual({ major: 7, minor: 31, maxReadahead: 0x20000, flags: 1, flags2: 0 });
  });

  it('fuse_read_in', () => {
    const body = hex(`0300000000000000 0000100000000000 00000200 00000000 0000000000000000 02800000 00000000`);
    expect(decodeReadIn(body)).toEqual({ handle: 3, offset: 0x100000, size: 0x20000, flags: 0x8002 });
  });

  it('fuse_write_in gives a view of the data', () => {
    const body = Buffer.concat([hex(`0400000000000000 0a00000000000000 03000000 00000000 0000000000000000 01000000 00000000`), Buffer.from('abc')]);
    const write = decodeWriteIn(body);
    expect(write).toMatchObject({ handle: 4, offset: 10, flags: 1 });
    expect(write.data.toString()).toBe('abc');
    expect(() => decodeWriteIn(body.subarray(0, 42))).toThrow(ProtocolError);
  });

  it('fuse_batch_forget_in', () => {
    const body = hex(`02000000 00000000 0500000000000000 0100000000000000 0600000000000000 0300000000000000`);
    expect(decodeBatchForgetIn(body)).toEqual([{ nodeId: 5, lookups: 1 }, { nodeId: 6, lookups: 3 }]);
  });

  it('fuse_rename2_in and its two names', () => {
    const body = Buffer.concat([hex('0900000000000000 01000000 00000000'), Buffer.from('a\0b.txt\0')]);
    expect(decodeRenameIn(body, 2)).toEqual({ newParent: 9, flags: 1, name: 'a', newName: 'b.txt' });
    expect(() => decodeRenameIn(Buffer.concat([hex('0900000000000000'), Buffer.from('a\0b')]), 1)).toThrow(ProtocolError);
  });

  it('fuse_setattr_in keeps only the valid fields', () => {
    const body = Buffer.alloc(Size.SETATTR_IN);
    body.writeUInt32LE((1 << 3) | (1 << 5) | (1 << 8), 0); // SIZE | MTIME | MTIME_NOW
    body.writeBigUInt64LE(123n, 16);
    body.writeUInt32LE(0o600, 68);
    expect(decodeSetattrIn(body)).toEqual({ size: 123, mtimeMs: 'now' });
  });
});
