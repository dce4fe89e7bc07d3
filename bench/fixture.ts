// The data every side reads: one big file of random bytes and a tree of small files cut from it,
// uploaded once with the SDK. The bytes stay in shared memory so that every reader can check what it got.
import { createHash, randomFillSync } from 'node:crypto';
import type { ObjectStore } from '../src/objectstore/store';
import { forEachLimited } from './limit';
import type { BenchOptions } from './options';
import { randomOffsets } from './random';
import { MIB } from './units';

/** The volume's prefix in the bucket: every side sees s3://BUCKET/VOLUME_PREFIX/. */
export const VOLUME_PREFIX = 'vol';

/** The big file, relative to the volume. */
export const BIG_FILE = 'big.bin';

/** The folder of the small files, relative to the volume. */
export const FILES_DIR = 'files';

/** The folder the write row writes into, relative to the volume. */
export const WRITTEN_DIR = 'written';

/** Small files per folder of the tree (so that ls -lR walks folders, not one flat list). */
export const FILES_PER_DIR = 100;

/** Part size of the setup's upload of the big file. */
export const SETUP_PART_BYTES = 16 * MIB;

/** Requests in flight during the setup's uploads. */
export const SETUP_CONCURRENCY = 16;

/** The source bytes and where each file's bytes come from. */
export interface Fixture {
  /** The big file's bytes, shared with the worker threads. */
  source: SharedArrayBuffer;
  size: number;
  /** sha256 (hex) of the big file. */
  sha256: string;
  /** Small files relative to the volume, in order. */
  files: string[];
  /** Where in `source` small file i starts (its bytes are source[offset, offset + fileSize)). */
  fileOffsets: number[];
  fileSize: number;
  /** Offsets of the random-read row, the same for every side and run. */
  randomOffsets: number[];
}

/** Path of small file `index`, relative to the volume. */
export function smallFile(index: number): string {
  const folder = String(Math.floor(index / FILES_PER_DIR)).padStart(3, '0');
  return `${FILES_DIR}/d${folder}/f${String(index).padStart(6, '0')}.bin`;
}

/** A Buffer view (no copy) of `length` source bytes at `offset`. */
export function sourceBytes(fixture: Pick<Fixture, 'source'>, offset: number, length: number): Buffer {
  return Buffer.from(fixture.source, offset, length);
}

/** Fills the source with random bytes and lays out the small files and random offsets. */
export function buildFixture(options: BenchOptions): Fixture {
  const source = new SharedArrayBuffer(options.size);
  const view = new Uint8Array(source);
  // randomFillSync fills at most 2 GiB - 1 per call.
  for (let start = 0; start < view.length; start += 1024 * MIB) randomFillSync(view, start, Math.min(1024 * MIB, view.length - start));
  const sha256 = createHash('sha256').update(view).digest('hex');
  const room = options.size - options.fileSize + 1;
  return {
    source,
    size: options.size,
    sha256,
    files: Array.from({ length: options.files }, (_, i) => smallFile(i)),
    fileOffsets: Array.from({ length: options.files }, (_, i) => (i * options.fileSize) % room),
    fileSize: options.fileSize,
    randomOffsets: randomOffsets(options.seed, options.randomReads, options.size, options.blockBytes),
  };
}

/** Uploads the big file (multipart) and the small files under `prefix/`. */
export async function uploadFixture(store: ObjectStore, fixture: Fixture, prefix: string): Promise<void> {
  const upload = await store.createMultipartUpload(`${prefix}/${BIG_FILE}`);
  try {
    const parts = Math.ceil(fixture.size / SETUP_PART_BYTES);
    await forEachLimited(parts, SETUP_CONCURRENCY, (index) => {
      const start = index * SETUP_PART_BYTES;
      return upload.uploadPart(index + 1, sourceBytes(fixture, start, Math.min(SETUP_PART_BYTES, fixture.size - start)));
    });
    await upload.complete();
  } catch (error) {
    await upload.abort().catch(() => undefined);
    throw error;
  }
  await forEachLimited(fixture.files.length, SETUP_CONCURRENCY, async (index) => {
    await store.put(`${prefix}/${fixture.files[index]!}`, sourceBytes(fixture, fixture.fileOffsets[index]!, fixture.fileSize));
  });
}
