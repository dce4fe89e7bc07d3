import { promises as fsp } from 'node:fs';
import { silentLogger } from '../../log/logger';
import { Errno } from '../errno';
import { FuseError } from '../fuse/operations';
import type { WritePathConfigInput } from '../../config/write-path';
import { createWriteHandle, type WriteHandle } from './write-handle';
import { createWritePath, type WritePath } from './write-path';
import { ObservedStore, pattern, temporaryStagingDir } from './testing';

const MiB = 1024 * 1024;
const logger = silentLogger();

describe('StreamingUpload through a write handle', () => {
  let stagingDir: string;
  let store: ObservedStore;

  beforeEach(async () => {
    stagingDir = await temporaryStagingDir();
    store = new ObservedStore();
  });
  afterEach(async () => {
    await fsp.rm(stagingDir, { recursive: true, force: true });
  });

  const writePathWith = (config: WritePathConfigInput = {}): WritePath =>
    createWritePath({ stagingDir, stagingMinFreeBytes: 0, ...config });

  const newFile = (writePath: WritePath, key = 'dir/checkpoint.bin'): WriteHandle =>
    createWriteHandle({ store, key, truncate: false, append: false, writePath, logger });

  async function writeSequentially(handle: WriteHandle, data: Buffer, chunk = 1 * MiB): Promise<void> {
    for (let at = 0; at < data.length; at += chunk) {
      expect(await handle.write(at, data.subarray(at, Math.min(data.length, at + chunk)))).toBe(Math.min(chunk, data.length - at));
    }
  }

  it('streams 50 MiB written sequentially as one multipart upload of 8 MiB parts and the last 2 MiB', async () => {
    const writePath = writePathWith();
    const handle = newFile(writePath);
    const data = pattern(50 * MiB);
    await writeSequentially(handle, data, 128 * 1024);
    expect(handle.kind).toBe('streaming');
    expect(handle.size).toBe(50 * MiB);
    await handle.flush();
    await handle.release();

    expect(store.callsOf('createMultipartUpload')).toHaveLength(1);
    expect(store.callsOf('put')).toHaveLength(0);
    const parts = store.callsOf('uploadPart').sort((a, b) => (a.partNumber ?? 0) - (b.partNumber ?? 0));
    expect(parts.map((p) => [p.partNumber, p.bytes])).toEqual([
      [1, 8 * MiB], [2, 8 * MiB], [3, 8 * MiB], [4, 8 * MiB], [5, 8 * MiB], [6, 8 * MiB], [7, 2 * MiB],
    ]);
    expect(store.callsOf('complete')).toHaveLength(1);
    expect((await store.content('dir/checkpoint.bin')).equals(data)).toBe(true);
    expect(store.inner.pendingUploads()).toEqual([]);
    expect(writePath.budget.used).toBe(writePath.parts.freeBytes); // only recycled free part buffers stay reserved
  });

  it('writes a file smaller than one part with a single put at flush, and nothing before', async () => {
    const writePath = writePathWith();
    const handle = newFile(writePath, 'small.txt');
    await handle.write(0, Buffer.from('hello '));
    await handle.write(6, Buffer.from('world'));
    expect(store.calls).toEqual([]);
    await handle.flush();
    expect(store.calls).toEqual([{ op: 'put', key: 'small.txt', bytes: 11 }]);
    expect((await store.content('small.txt')).toString()).toBe('hello world');
    // A second close (dup'd descriptor) with nothing new uploads nothing.
    await handle.flush();
    await handle.release();
    expect(store.calls).toHaveLength(1);
    expect(writePath.budget.used).toBe(writePath.parts.freeBytes); // only recycled free part buffers stay reserved
  });

  it('creates an empty object for a created file closed without writes', async () => {
    const handle = newFile(writePathWith(), 'empty');
    await handle.flush();
    await handle.release();
    expect((await store.content('empty')).length).toBe(0);
  });

  it('replaces an existing object when opened with O_TRUNC, streaming from offset 0', async () => {
    const existing = await store.inner.put('model.bin', pattern(3 * MiB, 1));
    const handle = createWriteHandle({ store, key: 'model.bin', existing, truncate: true, append: false, writePath: writePathWith(), logger });
    expect(handle.kind).toBe('streaming');
    expect(handle.size).toBe(0);
    await handle.write(0, Buffer.from('new'));
    await handle.flush();
    await handle.release();
    expect((await store.content('model.bin')).toString()).toBe('new');
    expect(store.callsOf('get')).toEqual([]);
  });

  it('uploads parts in parallel, never more than maxPartsInFlight at once', async () => {
    store.partDelayMs = 40;
    const writePath = writePathWith({ partSizeBytes: 5 * MiB, maxPartsInFlight: 3 });
    const handle = newFile(writePath);
    const data = pattern(52 * MiB, 2);
    await writeSequentially(handle, data);
    await handle.flush();
    await handle.release();
    expect(store.callsOf('uploadPart')).toHaveLength(11);
    // The slow store saw three parts uploading at the same time (overlap), and never a fourth.
    expect(store.maxPartsInFlight).toBe(3);
    expect((await store.content('dir/checkpoint.bin')).equals(data)).toBe(true);
  });

  it('makes writers wait when the mount memory budget is used up, and never exceeds it', async () => {
    store.partDelayMs = 20;
    const writePath = writePathWith({ partSizeBytes: 5 * MiB, maxPartSizeBytes: 5 * MiB, maxPartsInFlight: 4, memoryBudgetBytes: 15 * MiB, singlePutMaxBytes: 5 * MiB });
    let sawWaiting = false;
    const poll = setInterval(() => { sawWaiting ||= writePath.budget.waiting > 0; }, 1);
    const files = Array.from({ length: 6 }, (_, i) => ({ key: `writer-${i}`, data: pattern(23 * MiB, i) }));
    try {
      await Promise.all(files.map(async ({ key, data }) => {
        const handle = newFile(writePath, key);
        await writeSequentially(handle, data, 256 * 1024);
        await handle.flush();
        await handle.release();
      }));
    } finally {
      clearInterval(poll);
    }
    expect(writePath.budget.peak).toBeLessThanOrEqual(15 * MiB);
    expect(writePath.budget.peak).toBeGreaterThan(5 * MiB);
    expect(sawWaiting).toBe(true);
    expect(writePath.budget.used).toBe(writePath.parts.freeBytes); // only recycled free part buffers stay reserved
    for (const { key, data } of files) expect((await store.content(key)).equals(data)).toBe(true);
  });

  it('aborts the upload when a part fails: EIO from write or flush, no pending upload, no object', async () => {
    const writePath = writePathWith({ partSizeBytes: 5 * MiB });
    store.inner.failNext('uploadPart', 'Unavailable');
    const handle = newFile(writePath);
    const data = pattern(21 * MiB);
    const failure = await (async () => {
      try {
        await writeSequentially(handle, data);
        await handle.flush();
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(failure).toBeInstanceOf(FuseError);
    expect((failure as FuseError).errno).toBe(Errno.EIO);
    // Sticky: the streamed bytes are gone, so a later close must not report success.
    await expect(handle.flush()).rejects.toMatchObject({ errno: Errno.EIO });
    await expect(handle.write(handle.size, Buffer.from('x'))).rejects.toMatchObject({ errno: Errno.EIO });
    await handle.release();
    await writePath.uploads.aborter.idle(); // the abort runs in the background
    expect(store.callsOf('abort')).toHaveLength(1);
    expect(store.inner.pendingUploads()).toEqual([]);
    expect(store.inner.keys()).toEqual([]);
    expect(writePath.budget.used).toBe(writePath.parts.freeBytes); // only recycled free part buffers stay reserved
  });

  it('aborts the upload when complete fails, and reports EIO from the flush', async () => {
    const writePath = writePathWith({ partSizeBytes: 5 * MiB });
    const handle = newFile(writePath);
    await writeSequentially(handle, pattern(12 * MiB));
    store.inner.failNext('complete', 'Internal');
    await expect(handle.flush()).rejects.toMatchObject({ errno: Errno.EIO });
    await handle.release();
    await writePath.uploads.aborter.idle();
    expect(store.inner.pendingUploads()).toEqual([]);
    expect(store.inner.keys()).toEqual([]);
  });

  it('publishes on release what no flush covered (writes the kernel sent after the last FLUSH, as mmap does)', async () => {
    const writePath = writePathWith({ partSizeBytes: 5 * MiB });
    const handle = newFile(writePath);
    const data = pattern(17 * MiB);
    await writeSequentially(handle, data);
    expect(store.inner.pendingUploads()).toEqual(['dir/checkpoint.bin']);
    await handle.release();
    expect(store.inner.pendingUploads()).toEqual([]);
    expect((await store.content('dir/checkpoint.bin')).equals(data)).toBe(true);
    expect(writePath.budget.used).toBe(writePath.parts.freeBytes); // only recycled free part buffers stay reserved
    await expect(handle.write(0, Buffer.from('x'))).rejects.toMatchObject({ errno: Errno.EBADF });
  });

  it('serialises calls the kernel sends at once: sequential writes issued without waiting still stream in order', async () => {
    const writePath = writePathWith({ partSizeBytes: 5 * MiB });
    const handle = newFile(writePath);
    const data = pattern(12 * MiB, 3);
    const writes = [];
    for (let at = 0; at < data.length; at += MiB) writes.push(handle.write(at, data.subarray(at, at + MiB)));
    writes.push(handle.flush());
    await Promise.all(writes);
    await handle.release();
    expect(store.callsOf('uploadPart')).toHaveLength(3);
    expect((await store.content('dir/checkpoint.bin')).equals(data)).toBe(true);
  });
});
