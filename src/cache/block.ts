// A cache block: one fixed-size, aligned byte range of one object version, and the id the ring, the
// tiers and the disk files know it by. The cache's naming of blocks; the arithmetic and the block-size limits
// are src/blocks/ (the same as the mount's), and this module imports nothing else.
import { createHash } from 'node:crypto';
import { blockSpan, type ByteRange } from '../blocks/block-math';

/** Names one block: which object store, which object version, which aligned range. */
export interface BlockRef {
  /** The object store's endpoint as the reader sees it (URL), '' for the AWS default. */
  endpoint: string;
  bucket: string;
  key: string;
  /** The object version; never empty (a store that gives no ETag is read without the cache). */
  etag: string;
  /** The object's size in bytes (from its listing or HEAD): the last block ends there. Part of the id. */
  objectSize: number;
  /** Block number: the block holds bytes [index × blockSize, (index + 1) × blockSize) of the object, cut at its end. */
  index: number;
  blockSize: number;
}

/**
 * The block's id: a hash of (endpoint, bucket, key, ETag, object size, block size) and the index. Fixed length and
 * file-name safe, so it names the disk file; a changed object has a new ETag and so new ids: a stale
 * block is never served, it just ages out.
 */
export function blockId(ref: BlockRef): string {
  const version = createHash('sha256')
    .update(`${ref.endpoint}\0${ref.bucket}\0${ref.key}\0${ref.etag}\0${ref.objectSize}\0${ref.blockSize}`)
    .digest('hex')
    .slice(0, 40);
  return `${version}-${ref.index}`;
}

/** Whether `id` has the shape blockId() produces (40 hex digits, '-', a block index). */
export function isBlockId(id: string): boolean {
  return /^[0-9a-f]{40}-\d{1,15}$/.test(id);
}

/** The bytes of the object the block holds: blockSize of them, fewer in the last block. */
export function blockRange(ref: Pick<BlockRef, 'index' | 'blockSize' | 'objectSize'>): ByteRange {
  return blockSpan(ref.index, ref.blockSize, ref.objectSize);
}
