// The disk tier's block file format: a 64-byte header that names the block and checksums the whole file,
// then the block's bytes.
//   offset 0  "GRNB"        magic
//   offset 4  u16 LE        format version (BLOCK_FORMAT_VERSION); magic and version keep these places in every version
//   offset 6  u16 LE        reserved, 0
//   offset 8  u32 LE        data length
//   offset 12 u32 LE        reserved, 0
//   offset 16 20 bytes      the block id's object-version hash (its 40 hex digits, as bytes)
//   offset 36 u64 LE        the block index (the id's suffix)
//   offset 44 12 bytes      reserved, 0
//   offset 56 u64 LE        XXH64 (seed 0) of header bytes 0-55 and the data
// Why the id: a checksum of the data alone cannot tell one sound block from another, so a block file
// swapped with, copied over or renamed to another block's name would be served as that block.
// Why XXH64 (@node-rs/xxhash): a 64-bit hash misses a random corruption with odds of 2^-64 against CRC-32's
// 2^-32, and it costs less CPU than zlib.crc32 (4 MiB buffers, one core of the 2-core test machine: XXH64
// ~19,000 MiB/s, zlib.crc32 ~5,200 MiB/s, SHA-256 ~1,800 MiB/s). A cryptographic hash would buy nothing
// here: whoever can write the files can rewrite any unkeyed checksum too.
import { Xxh64 } from '@node-rs/xxhash';
import { isBlockId } from '../block';

/** The block file format this code writes and reads. Version 1 had a 16-byte header with a CRC-32 of the data alone. */
export const BLOCK_FORMAT_VERSION = 2;

/** Bytes of a block file's header, before the data. */
export const BLOCK_HEADER_BYTES = 64;

const MAGIC = Buffer.from('GRNB', 'ascii');
const VERSION_OFFSET = 4;
const LENGTH_OFFSET = 8;
const ID_OFFSET = 16;
const ID_BYTES = 28;
const INDEX_OFFSET = 36;
const CHECKSUM_OFFSET = 56;

/** The block id as the header holds it: 20 bytes of object-version hash, then the index as u64 LE. */
function encodeId(id: string): Buffer {
  if (!isBlockId(id)) throw new Error(`"${id}" is not a block id`);
  const dash = id.indexOf('-');
  const bytes = Buffer.alloc(ID_BYTES);
  bytes.write(id.slice(0, dash), 0, 'hex');
  bytes.writeBigUInt64LE(BigInt(id.slice(dash + 1)), INDEX_OFFSET - ID_OFFSET);
  return bytes;
}

/** The block id a header names, in blockId() form. */
function decodeId(header: Buffer): string {
  return `${header.toString('hex', ID_OFFSET, INDEX_OFFSET)}-${header.readBigUInt64LE(INDEX_OFFSET)}`;
}

/** The checksum of a block file: XXH64 of its header (less the checksum field) and its data. */
function checksumOf(header: Buffer, data: Buffer): bigint {
  return new Xxh64().update(header.subarray(0, CHECKSUM_OFFSET)).update(data).digest();
}

/** The header of the file holding block `id`, whose bytes are `data`. Throws if `id` is not a block id. */
export function encodeBlockHeader(id: string, data: Buffer): Buffer {
  const header = Buffer.alloc(BLOCK_HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt16LE(BLOCK_FORMAT_VERSION, VERSION_OFFSET);
  header.writeUInt32LE(data.length, LENGTH_OFFSET);
  encodeId(id).copy(header, ID_OFFSET);
  header.writeBigUInt64LE(checksumOf(header, data), CHECKSUM_OFFSET);
  return header;
}

/** The data of a block file's contents if they are a sound file of block `id`, or why they are not. */
export function decodeBlockFile(id: string, contents: Buffer): { data: Buffer } | { problem: string } {
  if (contents.length < BLOCK_HEADER_BYTES) return { problem: `file of ${contents.length} bytes is shorter than the ${BLOCK_HEADER_BYTES}-byte header` };
  if (!contents.subarray(0, MAGIC.length).equals(MAGIC)) return { problem: 'bad magic' };
  const version = contents.readUInt16LE(VERSION_OFFSET);
  if (version !== BLOCK_FORMAT_VERSION) return { problem: `format version ${version}, expected ${BLOCK_FORMAT_VERSION}` };
  const header = contents.subarray(0, BLOCK_HEADER_BYTES);
  const data = contents.subarray(BLOCK_HEADER_BYTES);
  const length = header.readUInt32LE(LENGTH_OFFSET);
  if (data.length !== length) return { problem: `header says ${length} bytes, file holds ${data.length}` };
  if (checksumOf(header, data) !== header.readBigUInt64LE(CHECKSUM_OFFSET)) return { problem: 'XXH64 checksum mismatch' };
  // Compared as bytes, so only the block's identity counts (not how its id was spelled).
  if (!header.subarray(ID_OFFSET, ID_OFFSET + ID_BYTES).equals(encodeId(id))) return { problem: `the file holds block ${decodeId(header)}, not ${id}` };
  return { data };
}
