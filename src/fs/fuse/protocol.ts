// The FUSE kernel protocol as it crosses /dev/fuse: opcodes, flags and the byte layout of every
// struct granary reads or writes. Layouts follow Linux include/uapi/linux/fuse.h (protocol 7.38);
// all integers are little-endian (x86_64 and arm64, the only targets), u64 fields that hold ids,
// sizes or offsets are read into JS numbers (exact below 2^53 = 8 PiB, far beyond any object).

/** The protocol major version granary speaks. */
export const KERNEL_VERSION = 7;

/** The newest protocol minor version granary speaks; the kernel and granary settle on the smaller of the two. */
export const KERNEL_MINOR_VERSION = 38;

/** The oldest minor version accepted: 7.28 (Linux 4.20) brought max_pages, which the 1 MiB requests rely on. */
export const MINIMUM_KERNEL_MINOR_VERSION = 28;

/** The node id of the mount's root directory, fixed by the protocol. */
export const ROOT_NODE_ID = 1;

/** The largest WRITE payload granary accepts (init_out.max_write); also the largest READ the kernel sends. */
export const MAX_WRITE = 1024 * 1024;

/** Pages per request (init_out.max_pages): 256 × 4 KiB = MAX_WRITE. */
export const MAX_PAGES = 256;

/** Size of one buffer that reads /dev/fuse: a full WRITE (headers + MAX_WRITE) with room to spare. */
export const REQUEST_BUFFER_SIZE = MAX_WRITE + 4096;

/** The ino to report in a directory entry whose node id is not known yet (as libfuse does). */
export const UNKNOWN_INO = 0xffffffff;

/** Request opcodes (enum fuse_opcode). */
export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SYNCFS: 50,
  TMPFILE: 51,
} as const;

/** One of the request opcodes. */
export type OpcodeValue = (typeof Opcode)[keyof typeof Opcode];

const opcodeNames = new Map<number, string>(Object.entries(Opcode).map(([name, value]) => [value, name]));

/** The name of an opcode for logs ("READ"), or "OPCODE_<n>" for one granary does not know. */
export function opcodeName(opcode: number): string {
  return opcodeNames.get(opcode) ?? `OPCODE_${opcode}`;
}

/** FUSE_INIT flags (fuse_init_in.flags / fuse_init_out.flags), the ones granary reads or sets. */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5,
  DONT_MASK: 1 << 6,
  FLOCK_LOCKS: 1 << 10,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  HANDLE_KILLPRIV: 1 << 19,
  POSIX_ACL: 1 << 20,
  ABORT_ERROR: 1 << 21,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  EXPLICIT_INVAL_DATA: 1 << 25,
  HANDLE_KILLPRIV_V2: 1 << 28,
  INIT_EXT: 1 << 30,
} as const;

/** FUSE_INIT flags of the second word (fuse_init_in.flags2: bit n here is bit 32 + n of the 64-bit flags). */
export const InitFlag2 = {
  /** FUSE_HAS_RESEND (Linux 6.9, protocol 7.40): the kernel can queue again the requests a daemon read but never answered. */
  HAS_RESEND: 1 << 7,
} as const;

/** Codes of the notifications a daemon writes to /dev/fuse unasked (fuse_out_header.error, with unique 0). */
export const NotifyCode = {
  /** FUSE_NOTIFY_RESEND: every request read but not answered goes back to the queue, its id marked with UNIQUE_RESEND_BIT. */
  RESEND: 7,
} as const;

/** FUSE_UNIQUE_RESEND: set in the id of a request the kernel sends again after NotifyCode.RESEND. */
export const UNIQUE_RESEND_BIT = 1n << 63n;

/** The FUSE_NOTIFY_RESEND notification: a header alone (no body), unique 0, the code in the error field. */
export function encodeNotifyResend(): Buffer {
  return encodeOutHeader(0n, NotifyCode.RESEND, 0);
}

/** fuse_open_out.open_flags. */
export const OpenFlag = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  NOFLUSH: 1 << 5,
} as const;

/** fuse_setattr_in.valid: which fields of a SETATTR request carry a change. */
export const SetattrValid = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
} as const;

/** fuse_release_in.release_flags: FLUSH means the release stands in for a FLUSH the kernel skipped. */
export const RELEASE_FLUSH = 1 << 0;

/** fuse_fsync_in.fsync_flags: only the data, not the metadata, needs to reach stable storage. */
export const FSYNC_DATA_ONLY = 1 << 0;

/** Directory entry types (d_type), as in <dirent.h>. */
export const DirentType = {
  UNKNOWN: 0,
  DIRECTORY: 4,
  REGULAR: 8,
  SYMLINK: 10,
} as const;

/** Byte sizes of the fixed structs. */
export const Size = {
  IN_HEADER: 40,
  OUT_HEADER: 16,
  ATTR: 88,
  ENTRY_OUT: 128,
  ATTR_OUT: 104,
  OPEN_OUT: 16,
  INIT_IN_MIN: 16, // up to and including flags; flags2 follows from 7.36 with INIT_EXT
  INIT_OUT: 64,
  STATFS_OUT: 80,
  WRITE_OUT: 8,
  DIRENT_HEADER: 24,
  READ_IN: 40,
  WRITE_IN: 40,
  GETATTR_IN: 16,
  SETATTR_IN: 88,
  OPEN_IN: 8,
  CREATE_IN: 16,
  RELEASE_IN: 24,
  FLUSH_IN: 24,
  FSYNC_IN: 16,
  MKDIR_IN: 8,
  MKNOD_IN: 16,
  RENAME_IN: 8,
  RENAME2_IN: 16,
  ACCESS_IN: 8,
  FORGET_IN: 8,
  BATCH_FORGET_IN: 8,
  FORGET_ONE: 16,
  INTERRUPT_IN: 8,
} as const;

/** A malformed request from the kernel (too short, no NUL after a name). */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

function need(buffer: Buffer, bytes: number, what: string): void {
  if (buffer.length < bytes) throw new ProtocolError(`${what}: ${buffer.length} bytes, need ${bytes}`);
}

function u64(buffer: Buffer, offset: number): number {
  // Exact below 2^53, as Number(readBigUInt64LE) is, without a BigInt per field.
  return buffer.readUInt32LE(offset) + buffer.readUInt32LE(offset + 4) * 0x1_0000_0000;
}

function writeU64(buffer: Buffer, value: number, offset: number): void {
  // Two 32-bit halves rather than writeBigUInt64LE: no BigInt per field (a READDIRPLUS entry writes ten of them).
  const whole = Math.max(0, Math.trunc(value));
  buffer.writeUInt32LE(whole % 0x1_0000_0000, offset);
  buffer.writeUInt32LE(Math.floor(whole / 0x1_0000_0000), offset + 4);
}

// ---------------------------------------------------------------------------------------------
// Headers

/** fuse_in_header: what every request starts with. */
export interface InHeader {
  /** Length of the whole request, header included. */
  length: number;
  opcode: number;
  /** The request id to echo in the reply; kept as bigint because the kernel may use all 64 bits. */
  unique: bigint;
  nodeId: number;
  uid: number;
  gid: number;
  pid: number;
  /** Length of request extensions in 8-byte units (only when security context is negotiated). */
  totalExtensionLength: number;
}

/** Decodes the 40-byte request header. */
export function decodeInHeader(buffer: Buffer): InHeader {
  need(buffer, Size.IN_HEADER, 'fuse_in_header');
  return {
    length: buffer.readUInt32LE(0),
    opcode: buffer.readUInt32LE(4),
    unique: buffer.readBigUInt64LE(8),
    nodeId: u64(buffer, 16),
    uid: buffer.readUInt32LE(24),
    gid: buffer.readUInt32LE(28),
    pid: buffer.readUInt32LE(32),
    totalExtensionLength: buffer.readUInt16LE(36),
  };
}

/** Encodes a request header (the kernel's side; used by tests and fakes). */
export function encodeInHeader(header: Omit<InHeader, 'totalExtensionLength'> & { totalExtensionLength?: number }): Buffer {
  const buffer = Buffer.alloc(Size.IN_HEADER);
  buffer.writeUInt32LE(header.length, 0);
  buffer.writeUInt32LE(header.opcode, 4);
  buffer.writeBigUInt64LE(header.unique, 8);
  writeU64(buffer, header.nodeId, 16);
  buffer.writeUInt32LE(header.uid, 24);
  buffer.writeUInt32LE(header.gid, 28);
  buffer.writeUInt32LE(header.pid, 32);
  buffer.writeUInt16LE(header.totalExtensionLength ?? 0, 36);
  return buffer;
}

/** Encodes fuse_out_header; `error` is 0 or a negative errno, `bodyLength` the bytes that follow. */
export function encodeOutHeader(unique: bigint, error: number, bodyLength: number): Buffer {
  const buffer = Buffer.alloc(Size.OUT_HEADER);
  buffer.writeUInt32LE(Size.OUT_HEADER + bodyLength, 0);
  buffer.writeInt32LE(error, 4);
  buffer.writeBigUInt64LE(unique, 8);
  return buffer;
}

/** fuse_out_header as decoded (by tests and fakes that play the kernel). */
export interface OutHeader {
  length: number;
  error: number;
  unique: bigint;
}

/** Decodes fuse_out_header. */
export function decodeOutHeader(buffer: Buffer): OutHeader {
  need(buffer, Size.OUT_HEADER, 'fuse_out_header');
  return { length: buffer.readUInt32LE(0), error: buffer.readInt32LE(4), unique: buffer.readBigUInt64LE(8) };
}

// ---------------------------------------------------------------------------------------------
// Replies

/** The attributes of one inode (struct fuse_attr); times in milliseconds since the epoch. */
export interface Attributes {
  ino: number;
  size: number;
  /** 512-byte blocks allocated; derived from size when absent. */
  blocks?: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** File type and permission bits (S_IFREG | 0o644...). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev?: number;
  /** Preferred I/O size reported as st_blksize. */
  blksize: number;
}

function writeTime(buffer: Buffer, ms: number, secondsOffset: number, nanosecondsOffset: number): void {
  const seconds = Math.floor(ms / 1000);
  writeU64(buffer, seconds, secondsOffset);
  buffer.writeUInt32LE(Math.round((ms - seconds * 1000) * 1e6) % 1e9, nanosecondsOffset);
}

/** Writes the 88-byte fuse_attr at `offset`. */
export function encodeAttr(buffer: Buffer, offset: number, attr: Attributes): void {
  writeU64(buffer, attr.ino, offset);
  writeU64(buffer, attr.size, offset + 8);
  writeU64(buffer, attr.blocks ?? Math.ceil(attr.size / 512), offset + 16);
  writeTime(buffer, attr.atimeMs, offset + 24, offset + 48);
  writeTime(buffer, attr.mtimeMs, offset + 32, offset + 52);
  writeTime(buffer, attr.ctimeMs, offset + 40, offset + 56);
  buffer.writeUInt32LE(attr.mode >>> 0, offset + 60);
  buffer.writeUInt32LE(attr.nlink, offset + 64);
  buffer.writeUInt32LE(attr.uid, offset + 68);
  buffer.writeUInt32LE(attr.gid, offset + 72);
  buffer.writeUInt32LE(attr.rdev ?? 0, offset + 76);
  buffer.writeUInt32LE(attr.blksize, offset + 80);
  buffer.writeUInt32LE(0, offset + 84);
}

/** Reads a fuse_attr back (tests and fakes). */
export function decodeAttr(buffer: Buffer, offset = 0): Required<Attributes> {
  const time = (s: number, ns: number) => u64(buffer, offset + s) * 1000 + buffer.readUInt32LE(offset + ns) / 1e6;
  return {
    ino: u64(buffer, offset),
    size: u64(buffer, offset + 8),
    blocks: u64(buffer, offset + 16),
    atimeMs: time(24, 48),
    mtimeMs: time(32, 52),
    ctimeMs: time(40, 56),
    mode: buffer.readUInt32LE(offset + 60),
    nlink: buffer.readUInt32LE(offset + 64),
    uid: buffer.readUInt32LE(offset + 68),
    gid: buffer.readUInt32LE(offset + 72),
    rdev: buffer.readUInt32LE(offset + 76),
    blksize: buffer.readUInt32LE(offset + 80),
  };
}

/** A timeout as the kernel wants it: whole seconds plus nanoseconds. */
function writeValidity(buffer: Buffer, ms: number, secondsOffset: number, nanosecondsOffset: number): void {
  writeTime(buffer, Math.max(0, ms), secondsOffset, nanosecondsOffset);
}

/** The answer to LOOKUP, MKDIR, CREATE...: a node id the kernel holds one more reference on. */
export interface EntryReply {
  nodeId: number;
  /** With nodeId, must be unique for the life of the filesystem; 0 when node ids are never reused. */
  generation: number;
  /** How long the kernel may cache the name → node binding. */
  entryTimeoutMs: number;
  /** How long the kernel may cache the attributes. */
  attrTimeoutMs: number;
  attributes: Attributes;
}

/** Encodes fuse_entry_out (128 bytes). */
export function encodeEntryOut(entry: EntryReply): Buffer {
  const buffer = Buffer.alloc(Size.ENTRY_OUT);
  writeEntryOut(buffer, 0, entry);
  return buffer;
}

/** Writes the 128-byte fuse_entry_out at `offset`. */
function writeEntryOut(buffer: Buffer, offset: number, entry: EntryReply): void {
  writeU64(buffer, entry.nodeId, offset);
  writeU64(buffer, entry.generation, offset + 8);
  writeValidity(buffer, entry.entryTimeoutMs, offset + 16, offset + 32);
  writeValidity(buffer, entry.attrTimeoutMs, offset + 24, offset + 36);
  encodeAttr(buffer, offset + 40, entry.attributes);
}

/** The answer to GETATTR and SETATTR. */
export interface AttrReply {
  attributes: Attributes;
  /** How long the kernel may cache them. */
  timeoutMs: number;
}

/** Encodes fuse_attr_out (104 bytes). */
export function encodeAttrOut(reply: AttrReply): Buffer {
  const buffer = Buffer.alloc(Size.ATTR_OUT);
  writeValidity(buffer, reply.timeoutMs, 0, 8);
  encodeAttr(buffer, 16, reply.attributes);
  return buffer;
}

/** The answer to OPEN and OPENDIR: the handle the kernel passes back on every later call. */
export interface OpenReply {
  handle: number;
  /** OpenFlag bits (KEEP_CACHE, DIRECT_IO...). */
  flags?: number;
}

/** Encodes fuse_open_out (16 bytes). */
export function encodeOpenOut(reply: OpenReply): Buffer {
  const buffer = Buffer.alloc(Size.OPEN_OUT);
  writeU64(buffer, reply.handle, 0);
  buffer.writeUInt32LE(reply.flags ?? 0, 8);
  return buffer;
}

/** The answer to STATFS (struct fuse_kstatfs). */
export interface StatfsReply {
  blocks: number;
  blocksFree: number;
  blocksAvailable: number;
  files: number;
  filesFree: number;
  blockSize: number;
  nameLength: number;
  fragmentSize: number;
}

/** Encodes fuse_statfs_out (80 bytes). */
export function encodeStatfsOut(reply: StatfsReply): Buffer {
  const buffer = Buffer.alloc(Size.STATFS_OUT);
  writeU64(buffer, reply.blocks, 0);
  writeU64(buffer, reply.blocksFree, 8);
  writeU64(buffer, reply.blocksAvailable, 16);
  writeU64(buffer, reply.files, 24);
  writeU64(buffer, reply.filesFree, 32);
  buffer.writeUInt32LE(reply.blockSize, 40);
  buffer.writeUInt32LE(reply.nameLength, 44);
  buffer.writeUInt32LE(reply.fragmentSize, 48);
  return buffer;
}

/** Encodes fuse_write_out: how many bytes were written. */
export function encodeWriteOut(size: number): Buffer {
  const buffer = Buffer.alloc(Size.WRITE_OUT);
  buffer.writeUInt32LE(size, 0);
  return buffer;
}

/** One directory entry as READDIR returns it. */
export interface DirectoryEntry {
  /** Shown as d_ino; the kernel does not use it to find the inode (a LOOKUP follows). */
  ino: number;
  name: string;
  /** DirentType value. */
  type: number;
  /** The offset the kernel passes back to continue after this entry (an opaque cookie, never 0). */
  nextOffset: number;
}

/** The size of one encoded dirent: 24-byte header plus the name, padded to a multiple of 8. */
export function direntSize(nameBytes: number): number {
  return (Size.DIRENT_HEADER + nameBytes + 7) & ~7;
}

/** The size of one encoded fuse_direntplus: fuse_entry_out (128 bytes), then a dirent, padded to a multiple of 8. */
export function direntPlusSize(nameBytes: number): number {
  return (Size.ENTRY_OUT + Size.DIRENT_HEADER + nameBytes + 7) & ~7;
}

/** One directory entry as READDIRPLUS returns it: `entry` absent (node id 0) means "no lookup" ('.' and '..'). */
export interface DirectoryEntryPlus extends DirectoryEntry {
  entry?: EntryReply;
}

/**
 * Packs directory entries into a READDIR reply of at most `maxBytes`; stops before the first that
 * does not fit, and returns the buffer and how many entries went in.
 */
export function encodeDirents(entries: readonly DirectoryEntry[], maxBytes: number): { buffer: Buffer; count: number } {
  return packDirents(entries, maxBytes, 0, () => undefined);
}

/**
 * Packs READDIRPLUS entries (fuse_direntplus) into a reply of at most `maxBytes`, like encodeDirents.
 * The kernel counts one lookup for every entry sent with a node id, so callers must send only
 * entries they counted: the count returned says how many fit.
 */
export function encodeDirentsPlus(entries: readonly DirectoryEntryPlus[], maxBytes: number): { buffer: Buffer; count: number } {
  return packDirents(entries, maxBytes, Size.ENTRY_OUT, (buffer, offset, entry) => {
    if (entry.entry) writeEntryOut(buffer, offset, entry.entry);
  });
}

/** Writes dirents, each after `prefixBytes` written by `writePrefix` (zeros when it writes nothing), in one buffer. */
function packDirents<T extends DirectoryEntry>(entries: readonly T[], maxBytes: number, prefixBytes: number, writePrefix: (buffer: Buffer, offset: number, entry: T) => void): { buffer: Buffer; count: number } {
  const nameLengths: number[] = [];
  let total = 0;
  for (const entry of entries) {
    const nameBytes = Buffer.byteLength(entry.name, 'utf8');
    const size = (prefixBytes + Size.DIRENT_HEADER + nameBytes + 7) & ~7;
    if (total + size > maxBytes) break;
    nameLengths.push(nameBytes);
    total += size;
  }
  const buffer = Buffer.alloc(total); // zero-filled, so padding and absent entry_outs are zeros
  let offset = 0;
  nameLengths.forEach((nameBytes, index) => {
    const entry = entries[index] as T;
    writePrefix(buffer, offset, entry);
    const dirent = offset + prefixBytes;
    writeU64(buffer, entry.ino, dirent);
    writeU64(buffer, entry.nextOffset, dirent + 8);
    buffer.writeUInt32LE(nameBytes, dirent + 16);
    buffer.writeUInt32LE(entry.type, dirent + 20);
    buffer.write(entry.name, dirent + Size.DIRENT_HEADER, nameBytes, 'utf8');
    offset += (prefixBytes + Size.DIRENT_HEADER + nameBytes + 7) & ~7;
  });
  return { buffer, count: nameLengths.length };
}

/** Reads a READDIRPLUS reply back into entries (tests and fakes); `entry` is absent for node id 0. */
export function decodeDirentsPlus(buffer: Buffer): DirectoryEntryPlus[] {
  const entries: DirectoryEntryPlus[] = [];
  let offset = 0;
  while (offset + Size.ENTRY_OUT + Size.DIRENT_HEADER <= buffer.length) {
    const nodeId = u64(buffer, offset);
    const dirent = offset + Size.ENTRY_OUT;
    const nameLength = buffer.readUInt32LE(dirent + 16);
    entries.push({
      ino: u64(buffer, dirent),
      nextOffset: u64(buffer, dirent + 8),
      type: buffer.readUInt32LE(dirent + 20),
      name: buffer.toString('utf8', dirent + Size.DIRENT_HEADER, dirent + Size.DIRENT_HEADER + nameLength),
      ...(nodeId !== 0 && {
        entry: {
          nodeId,
          generation: u64(buffer, offset + 8),
          entryTimeoutMs: u64(buffer, offset + 16) * 1000 + buffer.readUInt32LE(offset + 32) / 1e6,
          attrTimeoutMs: u64(buffer, offset + 24) * 1000 + buffer.readUInt32LE(offset + 36) / 1e6,
          attributes: decodeAttr(buffer, offset + 40),
        },
      }),
    });
    offset += direntPlusSize(nameLength);
  }
  return entries;
}

/** Reads a READDIR reply back into entries (tests and fakes). */
export function decodeDirents(buffer: Buffer): DirectoryEntry[] {
  const entries: DirectoryEntry[] = [];
  let offset = 0;
  while (offset + Size.DIRENT_HEADER <= buffer.length) {
    const nameLength = buffer.readUInt32LE(offset + 16);
    entries.push({
      ino: u64(buffer, offset),
      nextOffset: u64(buffer, offset + 8),
      type: buffer.readUInt32LE(offset + 20),
      name: buffer.toString('utf8', offset + Size.DIRENT_HEADER, offset + Size.DIRENT_HEADER + nameLength),
    });
    offset += direntSize(nameLength);
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// INIT

/** fuse_init_in: what the kernel offers. */
export interface InitRequest {
  major: number;
  minor: number;
  maxReadahead: number;
  /** Low 32 bits of the capability flags. */
  flags: number;
  /** High 32 bits (only with INIT_EXT, 7.36+), 0 otherwise. */
  flags2: number;
}

/** Decodes fuse_init_in (the body after the header). */
export function decodeInitIn(body: Buffer): InitRequest {
  need(body, Size.INIT_IN_MIN, 'fuse_init_in');
  const flags = body.readUInt32LE(12);
  const hasFlags2 = (flags & InitFlag.INIT_EXT) !== 0 && body.length >= Size.INIT_IN_MIN + 4;
  return {
    major: body.readUInt32LE(0),
    minor: body.readUInt32LE(4),
    maxReadahead: body.readUInt32LE(8),
    flags: flags >>> 0,
    flags2: hasFlags2 ? body.readUInt32LE(16) : 0,
  };
}

/** fuse_init_out: what granary answers. */
export interface InitReply {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  /** Most background (async readahead, writeback) requests the kernel keeps in flight. */
  maxBackground: number;
  /** Background requests past which the kernel marks the filesystem congested. */
  congestionThreshold: number;
  maxWrite: number;
  /** Timestamp granularity in nanoseconds. */
  timeGranularity: number;
  maxPages: number;
  flags2: number;
}

/** Encodes fuse_init_out (64 bytes). */
export function encodeInitOut(reply: InitReply): Buffer {
  const buffer = Buffer.alloc(Size.INIT_OUT);
  buffer.writeUInt32LE(reply.major, 0);
  buffer.writeUInt32LE(reply.minor, 4);
  buffer.writeUInt32LE(reply.maxReadahead, 8);
  buffer.writeUInt32LE(reply.flags >>> 0, 12);
  buffer.writeUInt16LE(reply.maxBackground, 16);
  buffer.writeUInt16LE(reply.congestionThreshold, 18);
  buffer.writeUInt32LE(reply.maxWrite, 20);
  buffer.writeUInt32LE(reply.timeGranularity, 24);
  buffer.writeUInt16LE(reply.maxPages, 28);
  buffer.writeUInt16LE(0, 30); // map_alignment: DAX only
  buffer.writeUInt32LE(reply.flags2 >>> 0, 32);
  return buffer;
}

// ---------------------------------------------------------------------------------------------
// Request bodies

/** Reads a NUL-terminated name starting at `offset`; returns it and the offset after the NUL. */
export function decodeName(body: Buffer, offset = 0): { name: string; end: number } {
  const nul = body.indexOf(0, offset);
  if (nul < 0) throw new ProtocolError('name without terminating NUL');
  return { name: body.toString('utf8', offset, nul), end: nul + 1 };
}

/** fuse_forget_in. */
export function decodeForgetIn(body: Buffer): { lookups: number } {
  need(body, Size.FORGET_IN, 'fuse_forget_in');
  return { lookups: u64(body, 0) };
}

/** Encodes fuse_interrupt_in (the kernel's side; used by tests and fakes). */
export function encodeInterruptIn(unique: bigint): Buffer {
  const buffer = Buffer.alloc(Size.INTERRUPT_IN);
  buffer.writeBigUInt64LE(unique, 0);
  return buffer;
}

/** FUSE_INT_REQ_BIT: set in an INTERRUPT's own id; ordinary request ids are even (the kernel steps them by 2). */
export const INTERRUPT_UNIQUE_BIT = 1n;

/** fuse_batch_forget_in followed by its fuse_forget_one array. */
export function decodeBatchForgetIn(body: Buffer): Array<{ nodeId: number; lookups: number }> {
  need(body, Size.BATCH_FORGET_IN, 'fuse_batch_forget_in');
  const count = body.readUInt32LE(0);
  need(body, Size.BATCH_FORGET_IN + count * Size.FORGET_ONE, 'fuse_batch_forget_in entries');
  const forgets: Array<{ nodeId: number; lookups: number }> = [];
  for (let i = 0; i < count; i++) {
    const at = Size.BATCH_FORGET_IN + i * Size.FORGET_ONE;
    forgets.push({ nodeId: u64(body, at), lookups: u64(body, at + 8) });
  }
  return forgets;
}

/** fuse_getattr_in: `handle` is set when the kernel asks about an open file (fstat). */
export function decodeGetattrIn(body: Buffer): { handle?: number } {
  // Kernels always send it since 7.9; be lenient for a zero-length body.
  if (body.length < Size.GETATTR_IN) return {};
  const GETATTR_FH = 1 << 0;
  return (body.readUInt32LE(0) & GETATTR_FH) !== 0 ? { handle: u64(body, 8) } : {};
}

/** A SETATTR request: only the fields present are to be changed. */
export interface SetattrRequest {
  handle?: number;
  size?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  /** A time in ms since the epoch, or "now". */
  atimeMs?: number | 'now';
  mtimeMs?: number | 'now';
  ctimeMs?: number;
}

/** Decodes fuse_setattr_in. */
export function decodeSetattrIn(body: Buffer): SetattrRequest {
  need(body, Size.SETATTR_IN, 'fuse_setattr_in');
  const valid = body.readUInt32LE(0);
  const has = (bit: number) => (valid & bit) !== 0;
  const time = (s: number, ns: number) => u64(body, s) * 1000 + body.readUInt32LE(ns) / 1e6;
  const request: SetattrRequest = {};
  if (has(SetattrValid.FH)) request.handle = u64(body, 8);
  if (has(SetattrValid.SIZE)) request.size = u64(body, 16);
  if (has(SetattrValid.ATIME)) request.atimeMs = has(SetattrValid.ATIME_NOW) ? 'now' : time(32, 56);
  if (has(SetattrValid.MTIME)) request.mtimeMs = has(SetattrValid.MTIME_NOW) ? 'now' : time(40, 60);
  if (has(SetattrValid.CTIME)) request.ctimeMs = time(48, 64);
  if (has(SetattrValid.MODE)) request.mode = body.readUInt32LE(68);
  if (has(SetattrValid.UID)) request.uid = body.readUInt32LE(76);
  if (has(SetattrValid.GID)) request.gid = body.readUInt32LE(80);
  return request;
}

/** fuse_open_in: `flags` are the open(2) flags (O_RDONLY, O_TRUNC...). */
export function decodeOpenIn(body: Buffer): { flags: number } {
  need(body, Size.OPEN_IN, 'fuse_open_in');
  return { flags: body.readUInt32LE(0) };
}

/** fuse_create_in followed by the new file's name. */
export function decodeCreateIn(body: Buffer): { flags: number; mode: number; umask: number; name: string } {
  need(body, Size.CREATE_IN, 'fuse_create_in');
  return {
    flags: body.readUInt32LE(0),
    mode: body.readUInt32LE(4),
    umask: body.readUInt32LE(8),
    name: decodeName(body, Size.CREATE_IN).name,
  };
}

/** fuse_mkdir_in followed by the new directory's name. */
export function decodeMkdirIn(body: Buffer): { mode: number; umask: number; name: string } {
  need(body, Size.MKDIR_IN, 'fuse_mkdir_in');
  return { mode: body.readUInt32LE(0), umask: body.readUInt32LE(4), name: decodeName(body, Size.MKDIR_IN).name };
}

/** fuse_mknod_in followed by the new node's name. */
export function decodeMknodIn(body: Buffer): { mode: number; rdev: number; umask: number; name: string } {
  need(body, Size.MKNOD_IN, 'fuse_mknod_in');
  return {
    mode: body.readUInt32LE(0),
    rdev: body.readUInt32LE(4),
    umask: body.readUInt32LE(8),
    name: decodeName(body, Size.MKNOD_IN).name,
  };
}

/** A RENAME or RENAME2 request; `flags` are renameat2 flags (RENAME_NOREPLACE...), 0 for RENAME. */
export interface RenameRequest {
  newParent: number;
  name: string;
  newName: string;
  flags: number;
}

/** Decodes fuse_rename_in (RENAME) or fuse_rename2_in (RENAME2), followed by the two names. */
export function decodeRenameIn(body: Buffer, version: 1 | 2): RenameRequest {
  const fixed = version === 2 ? Size.RENAME2_IN : Size.RENAME_IN;
  need(body, fixed, 'fuse_rename_in');
  const from = decodeName(body, fixed);
  return {
    newParent: u64(body, 0),
    flags: version === 2 ? body.readUInt32LE(8) : 0,
    name: from.name,
    newName: decodeName(body, from.end).name,
  };
}

/** fuse_read_in. */
export function decodeReadIn(body: Buffer): { handle: number; offset: number; size: number; flags: number } {
  need(body, Size.READ_IN, 'fuse_read_in');
  return { handle: u64(body, 0), offset: u64(body, 8), size: body.readUInt32LE(16), flags: body.readUInt32LE(32) };
}

/** fuse_write_in followed by the data (a view into `body`, not a copy). */
export function decodeWriteIn(body: Buffer): { handle: number; offset: number; data: Buffer; writeFlags: number; flags: number } {
  need(body, Size.WRITE_IN, 'fuse_write_in');
  const size = body.readUInt32LE(16);
  need(body, Size.WRITE_IN + size, 'fuse_write_in data');
  return {
    handle: u64(body, 0),
    offset: u64(body, 8),
    writeFlags: body.readUInt32LE(20),
    flags: body.readUInt32LE(32),
    data: body.subarray(Size.WRITE_IN, Size.WRITE_IN + size),
  };
}

/** fuse_release_in (RELEASE and RELEASEDIR). */
export function decodeReleaseIn(body: Buffer): { handle: number; flags: number; releaseFlags: number; lockOwner: bigint } {
  need(body, Size.RELEASE_IN, 'fuse_release_in');
  return {
    handle: u64(body, 0),
    flags: body.readUInt32LE(8),
    releaseFlags: body.readUInt32LE(12),
    lockOwner: body.readBigUInt64LE(16),
  };
}

/** fuse_flush_in. */
export function decodeFlushIn(body: Buffer): { handle: number; lockOwner: bigint } {
  need(body, Size.FLUSH_IN, 'fuse_flush_in');
  return { handle: u64(body, 0), lockOwner: body.readBigUInt64LE(16) };
}

/** fuse_fsync_in (FSYNC and FSYNCDIR). */
export function decodeFsyncIn(body: Buffer): { handle: number; dataOnly: boolean } {
  need(body, Size.FSYNC_IN, 'fuse_fsync_in');
  return { handle: u64(body, 0), dataOnly: (body.readUInt32LE(8) & FSYNC_DATA_ONLY) !== 0 };
}

/** fuse_access_in: `mask` is R_OK | W_OK | X_OK, or F_OK (0). */
export function decodeAccessIn(body: Buffer): { mask: number } {
  need(body, Size.ACCESS_IN, 'fuse_access_in');
  return { mask: body.readUInt32LE(0) };
}

/**
 * fuse_interrupt_in: the id of the request the kernel wants ended (its caller got a signal). The INTERRUPT itself
 * carries that id with INTERRUPT_UNIQUE_BIT set, and is answered only to say "not seen yet, send it again" (EAGAIN).
 */
export function decodeInterruptIn(body: Buffer): { unique: bigint } {
  need(body, Size.INTERRUPT_IN, 'fuse_interrupt_in');
  return { unique: body.readBigUInt64LE(0) };
}
