// The WriteHandle's publication rules: which FLUSH, fsync and RELEASE change the object (see the class comment).
import { promises as fsp } from 'node:fs';
import { silentLogger } from '../../log/logger';
import type { MultipartUpload, ObjectInfo, ObjectStore } from '../../objectstore/store';
import { Errno } from '../errno';
import { createWriteHandle, type WriteHandle } from './write-handle';
import { createWritePath, type WritePath } from './write-path';
import { ObservedStore, pattern, temporaryStagingDir } from './testing';

const MiB = 1024 * 1024;
const logger = silentLogger();

describe('WriteHandle: when the object changes', () => {
  let stagingDir: string;
  let store: ObservedStore;
  let writePath: WritePath;
  let old: ObjectInfo;
  const OLD = pattern(3 * MiB, 7);

  beforeEach(async () => {
    stagingDir = await temporaryStagingDir();
    store = new ObservedStore();
    writePath = createWritePath({ stagingDir, stagingMinFreeBytes: 0, partSizeBytes: 5 * MiB });
    old = await store.inner.put('model.bin', OLD);
  });
  afterEach(async () => {
    await fsp.rm(stagingDir, { recursive: true, force: true });
  });

  /** open(O_WRONLY|O_TRUNC) of the existing object, as the kernel sends it (ATOMIC_O_TRUNC). */
  const truncatingOpen = (through: ObjectStore = store): WriteHandle =>
    createWriteHandle({ store: through, key: 'model.bin', existing: old, truncate: true, append: false, writePath, logger });
  const writes = () => store.calls.filter((call) => call.op === 'put' || call.op === 'createMultipartUpload');

  async function writeAll(handle: WriteHandle, data: Buffer, from = 0): Promise<void> {
    for (let at = 0; at < data.length; at += MiB) await handle.write(from + at, data.subarray(at, at + MiB));
  }

  it('a FLUSH before any write (dup2, then close of the original) is a no-op: no request, the stream goes on', async () => {
    const handle = truncatingOpen();
    await handle.flush();
    expect(writes()).toEqual([]);
    expect((await store.content('model.bin')).equals(OLD)).toBe(true);
    expect(handle.kind).toBe('streaming');

    const data = pattern(12 * MiB, 1);
    await writeAll(handle, data);
    expect(handle.kind).toBe('streaming');
    // Parts went up, but the old object stays until the new one is complete.
    expect(store.callsOf('uploadPart').length).toBeGreaterThan(0);
    expect((await store.content('model.bin')).equals(OLD)).toBe(true);
    await handle.flush();
    expect((await store.content('model.bin')).equals(data)).toBe(true);
    expect(store.callsOf('complete')).toHaveLength(1);
    await handle.release();
    expect(store.callsOf('put')).toHaveLength(0);
  });

  it('a FLUSH after a persist with nothing written since is a no-op too', async () => {
    const handle = truncatingOpen();
    await handle.write(0, Buffer.from('v2'));
    await handle.flush();
    const calls = store.calls.length;
    await handle.flush();
    await handle.release();
    expect(store.calls.length).toBe(calls);
    expect((await store.content('model.bin')).toString()).toBe('v2');
  });

  it('RELEASE publishes a deferred truncation: O_TRUNC with nothing written becomes an empty object then, not at FLUSH', async () => {
    const handle = truncatingOpen();
    await handle.flush();
    expect((await store.content('model.bin')).equals(OLD)).toBe(true);
    expect(handle.unpublished).toBe(true);
    await handle.release();
    expect((await store.content('model.bin')).length).toBe(0);
    expect(store.callsOf('put')).toEqual([{ op: 'put', key: 'model.bin', bytes: 0 }]);
  });

  it('RELEASE publishes a new file created with nothing written as an empty object', async () => {
    const handle = createWriteHandle({ store, key: 'touched', truncate: true, append: false, writePath, logger });
    await handle.flush();
    expect(store.inner.keys()).not.toContain('touched');
    await handle.release();
    expect((await store.content('touched')).length).toBe(0);
  });

  it('fsync publishes a deferred truncation at once (fsync says so)', async () => {
    const handle = truncatingOpen();
    await handle.fsync();
    expect((await store.content('model.bin')).length).toBe(0);
    await handle.release();
    expect(store.callsOf('put')).toHaveLength(1);
  });

  it('keeps streaming after an fsync of a still empty file (nothing to seed a staging file with)', async () => {
    const handle = truncatingOpen();
    await handle.fsync();
    const data = pattern(12 * MiB, 2);
    await writeAll(handle, data);
    expect(handle.kind).toBe('streaming');
    await handle.flush();
    await handle.release();
    expect((await store.content('model.bin')).equals(data)).toBe(true);
    expect(store.callsOf('get')).toEqual([]);
  });

  it('RELEASE after a failed flush discards: the writer was told EIO, the old object stays', async () => {
    const handle = truncatingOpen();
    await handle.write(0, Buffer.from('half a checkpoint'));
    store.inner.failNext('put', 'Unavailable');
    await expect(handle.flush()).rejects.toMatchObject({ errno: Errno.EIO });
    expect(handle.unpublished).toBe(false);
    await handle.release();
    expect((await store.content('model.bin')).equals(OLD)).toBe(true);
    expect(store.callsOf('put')).toHaveLength(1); // the failed one only
  });

  it('RELEASE after a failed stream discards and aborts its upload', async () => {
    const handle = truncatingOpen();
    store.inner.failNext('uploadPart', 'Unavailable');
    const failure = await writeAll(handle, pattern(16 * MiB)).then(() => handle.flush()).then(() => undefined, (error: unknown) => error);
    expect(failure).toMatchObject({ errno: Errno.EIO });
    await handle.release();
    await writePath.uploads.aborter.idle();
    expect(store.inner.pendingUploads()).toEqual([]);
    expect((await store.content('model.bin')).equals(OLD)).toBe(true);
  });

  it('a close with data publishes what was written so far (write, dup2, close the original, write more)', async () => {
    const handle = truncatingOpen();
    await handle.write(0, Buffer.from('first '));
    await handle.flush();
    expect((await store.content('model.bin')).toString()).toBe('first ');
    await handle.write(6, Buffer.from('second'));
    await handle.flush();
    await handle.release();
    expect((await store.content('model.bin')).toString()).toBe('first second');
  });

  it('keeps its size after release, for the mount to show while the publish is pending', async () => {
    const handle = truncatingOpen();
    await handle.write(0, Buffer.from('12345'));
    await handle.flush();
    await handle.release();
    expect(handle.size).toBe(5);
    await expect(handle.write(5, Buffer.from('x'))).rejects.toMatchObject({ errno: Errno.EBADF });
  });

  it('answers the writer with EIO without waiting for the abort, which goes on in the background', async () => {
    let releaseAbort: () => void = () => undefined;
    const abortHeld = new Promise<void>((resolve) => (releaseAbort = resolve));
    const holding = holdingAborts(store, abortHeld);
    const handle = truncatingOpen(holding.store);
    store.inner.failNext('uploadPart', 'Unavailable');
    const failure = await writeAll(handle, pattern(16 * MiB)).then(() => handle.flush()).then(() => undefined, (error: unknown) => error);
    expect(failure).toMatchObject({ errno: Errno.EIO });
    await handle.release();
    // The writer has its answer and the handle is gone, while the abort is still held by the store.
    expect(holding.started()).toBe(1);
    expect(writePath.uploads.aborter.pending).toBe(1);
    releaseAbort();
    await writePath.uploads.aborter.idle();
    expect(store.inner.pendingUploads()).toEqual([]);
  });
});

describe('WriteHandle: interrupted writes, abandoned handles and progress', () => {
  let stagingDir: string;
  let store: ObservedStore;
  let writePath: WritePath;

  beforeEach(async () => {
    stagingDir = await temporaryStagingDir();
    store = new ObservedStore();
    writePath = createWritePath({ stagingDir, stagingMinFreeBytes: 0, partSizeBytes: 5 * MiB, maxPartsInFlight: 1 });
  });
  afterEach(async () => {
    await fsp.rm(stagingDir, { recursive: true, force: true });
  });

  const newFile = (key = 'checkpoint.bin'): WriteHandle => createWriteHandle({ store, key, truncate: true, append: false, writePath, logger });

  it('an interrupted write that waits for an upload slot returns what it buffered, or nothing and the reason; the file is whole at close', async () => {
    const release = store.holdParts();
    const handle = newFile();
    const data = pattern(12 * MiB);
    const chunk = (n: number) => data.subarray(n * MiB, (n + 1) * MiB);
    // Part 1 (MiB 0-4) uploads and is held; MiB 5-8 go into part 2.
    for (let n = 0; n < 9; n++) expect(await handle.write(n * MiB, chunk(n))).toBe(MiB);
    // MiB 9 fills part 2, which waits for the only slot: the caller is interrupted after the bytes were buffered.
    const interrupted = new AbortController();
    const filling = handle.write(9 * MiB, chunk(9), interrupted.signal);
    await until(() => store.partsInFlight === 1 && handle.size === 10 * MiB);
    interrupted.abort(new Error('signal'));
    expect(await filling).toBe(MiB);
    // MiB 10 finds part 2 full and still no slot: interrupted, it takes nothing, and the handle carries on.
    const nothing = new AbortController();
    const blocked = handle.write(10 * MiB, chunk(10), nothing.signal);
    await until(() => store.partsInFlight === 1);
    const reason = new Error('signal again');
    nothing.abort(reason);
    await expect(blocked).rejects.toBe(reason);
    expect(handle.size).toBe(10 * MiB);
    release();
    expect(await handle.write(10 * MiB, chunk(10))).toBe(MiB);
    expect(await handle.write(11 * MiB, chunk(11))).toBe(MiB);
    await handle.flush();
    await handle.release();
    expect((await store.content('checkpoint.bin')).equals(data)).toBe(true);
  });

  it('an abandoned handle fails every later call, aborts its stream and publishes nothing at release', async () => {
    const old = await store.inner.put('model.bin', Buffer.from('old content'));
    const handle = createWriteHandle({ store, key: 'model.bin', existing: old, truncate: true, append: false, writePath, logger });
    await handle.write(0, pattern(6 * MiB));
    handle.abandon(new Error('write deadline exceeded'));
    await expect(handle.write(6 * MiB, Buffer.from('more'))).rejects.toMatchObject({ errno: Errno.EIO });
    await expect(handle.flush()).rejects.toMatchObject({ errno: Errno.EIO });
    await expect(handle.fsync()).rejects.toMatchObject({ errno: Errno.EIO });
    expect(handle.unpublished).toBe(false);
    await handle.release();
    await writePath.uploads.aborter.idle();
    expect(store.inner.pendingUploads()).toEqual([]);
    expect((await store.content('model.bin')).toString()).toBe('old content');
  });

  it('tells a flush of each part and of the object the store acknowledges', async () => {
    writePath = createWritePath({ stagingDir, stagingMinFreeBytes: 0, partSizeBytes: 5 * MiB, maxPartsInFlight: 2 });
    const release = store.holdParts();
    const handle = newFile();
    // Parts 1 and 2 upload (held) in the two slots; part 3 holds the last 2 MiB.
    for (let n = 0; n < 12; n++) await handle.write(n * MiB, pattern(MiB, n));
    expect(store.partsInFlight).toBe(2);
    let progress = 0;
    const flushing = handle.flush(() => progress++);
    // The flush runs now: its last part waits for a slot while parts 1 and 2 are held.
    await new Promise((resolve) => setImmediate(resolve));
    expect(store.callsOf('uploadPart')).toHaveLength(2);
    expect(progress).toBe(0);
    release();
    await flushing;
    // Parts 1, 2 and 3, then the completed object.
    expect(progress).toBe(4);
    expect(store.callsOf('uploadPart')).toHaveLength(3);
    await handle.release();
  });
});

/** Resolves once `condition` holds, checking after every turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

/** Wraps `inner` so that every abort waits for `held` before it is sent; counts the aborts started. */
function holdingAborts(inner: ObjectStore, held: Promise<void>): { store: ObjectStore; started(): number } {
  let started = 0;
  const store = Object.assign(Object.create(inner) as ObjectStore, {
    createMultipartUpload: async (key: string): Promise<MultipartUpload> => {
      const upload = await inner.createMultipartUpload(key);
      return {
        key,
        uploadPart: (partNumber: number, body: Buffer) => upload.uploadPart(partNumber, body),
        complete: () => upload.complete(),
        abort: async () => {
          started++;
          await held;
          await upload.abort();
        },
      };
    },
  });
  return { store, started: () => started };
}
