import type { ByteRange, ListOptions } from './store';
import { MAX_PARTS, MIN_PART_SIZE } from './store';
import { ObjectStoreError } from './errors';

/** The longest key S3 accepts, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/** S3's cap on entries in one list page, which is also the default page size. */
export const MAX_LIST_KEYS = 1000;

/** The ETag S3 gives an empty single-part object (MD5 of nothing); used for directory markers. */
export const EMPTY_ETAG = 'd41d8cd98f00b204e9800998ecf8427e';

/** Rejects keys no S3 bucket accepts: empty or longer than MAX_KEY_BYTES. */
export function checkKey(key: string, location: string): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new ObjectStoreError('InvalidArgument', `empty key for ${location}: pass the object's key relative to the bucket root`);
  }
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new ObjectStoreError('InvalidArgument', `key "${key.slice(0, 64)}..." for ${location} is longer than ${MAX_KEY_BYTES} bytes: use a shorter path`);
  }
}

/** Rejects a range that cannot select any byte, before any request is made. */
export function checkRange(range: ByteRange, key: string): void {
  if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end <= range.start) {
    throw new ObjectStoreError('InvalidArgument', `invalid range [${range.start}, ${range.end}) for key "${key}": start must be >= 0 and end > start`);
  }
}

/** The range a store returns for `range` over an object of `size` bytes: clipped at the end, like S3; a start at or past the end is an error, like S3's 416. */
export function clipRange(range: ByteRange | undefined, size: number, key: string): ByteRange {
  if (range === undefined) return { start: 0, end: size };
  checkRange(range, key);
  if (range.start >= size) {
    throw new ObjectStoreError('InvalidArgument', `range [${range.start}, ${range.end}) of key "${key}" starts at or past its end (${size} bytes): read within the object`);
  }
  return { start: range.start, end: Math.min(range.end, size) };
}

/** Rejects a getInto() whose buffer is not exactly as long as its range, before any request is made. */
export function checkInto(range: ByteRange, into: Buffer, key: string): void {
  checkRange(range, key);
  if (into.length !== range.end - range.start) {
    throw new ObjectStoreError('InvalidArgument', `a ${into.length}-byte buffer for the range [${range.start}, ${range.end}) of key "${key}": pass a buffer of exactly the range's length`);
  }
}

/** The range getInto() reads of an object of `size` bytes: the whole range asked for, or an error when the object ends before it does. */
export function rangeWithin(range: ByteRange, size: number, key: string): ByteRange {
  const clipped = clipRange(range, size, key);
  if (clipped.end !== range.end) {
    throw new ObjectStoreError('InvalidArgument', `range [${range.start}, ${range.end}) of key "${key}" ends past its end (${size} bytes): read within the object`);
  }
  return clipped;
}

/** Rejects part numbers outside 1..MAX_PARTS. */
export function checkPartNumber(partNumber: number, key: string): void {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PARTS) {
    throw new ObjectStoreError('InvalidArgument', `part number ${partNumber} of the upload to "${key}" is outside 1..${MAX_PARTS}`);
  }
}

/** Rejects a part list S3 would refuse to complete: no parts, or a part other than the last below MIN_PART_SIZE. */
export function checkPartSizes(parts: ReadonlyArray<{ partNumber: number; size: number }>, key: string): void {
  if (parts.length === 0) {
    throw new ObjectStoreError('InvalidArgument', `the upload to "${key}" has no parts: upload at least one part before complete()`);
  }
  parts.forEach((part, index) => {
    if (index < parts.length - 1 && part.size < MIN_PART_SIZE) {
      throw new ObjectStoreError('InvalidArgument', `part ${part.partNumber} of the upload to "${key}" is ${part.size} bytes: every part but the last must be at least ${MIN_PART_SIZE} bytes`);
    }
  });
}

/** The page size for `maxKeys`: default and cap MAX_LIST_KEYS. */
export function pageSize(options: ListOptions): number {
  const maxKeys = options.maxKeys ?? MAX_LIST_KEYS;
  if (!Number.isInteger(maxKeys) || maxKeys < 1) {
    throw new ObjectStoreError('InvalidArgument', `maxKeys ${maxKeys} is not a positive integer`);
  }
  return Math.min(maxKeys, MAX_LIST_KEYS);
}

/** User metadata with lower-case names, as S3 stores it. */
export function normalizeMetadata(metadata: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata ?? {})) out[name.toLowerCase()] = value;
  return out;
}
