import { promises as fsp } from 'node:fs';
import { silentLogger } from '../../log/logger';
import type { ObjectInfo } from '../../objectstore/store';
import { Errno } from '../errno';
import type { WritePathConfigInput } from '../../config/write-path';
import { truncateObject } from './truncate';
import { createWriteHandle, type WriteHandle } from './write-handle';
import { createWritePath, type WritePath } from './write-path';
import { ObservedStore, pattern, temporaryStagingDir } from './testing';

const MiB = 1024 * 1024;
const logger = silentLogger();

describe('StagingFile through a write handle', () => {
  let stagingDir: string;
  let store: ObservedStore;

  beforeEach(async () => {
    stagingDir = await temporaryStagingDir();
    store = new ObservedStore();
  });
  afterEach(async () => {
    await fsp.rm(stagingDir, { recursive: true, force: true });
  });

  const writePathWith = (config: WritePathConfigInput = {}, freeSpace?: (dir: string) => Promise<number>): WritePath =>
    createWritePath({ stagingDir, stagingMinFreeBytes: 0, ...config }, freeSpace ? { freeSpace } : {});

  const open = (writePath: WritePath, key: string, existing?: ObjectInfo, flags: { truncate?: boolean; append?: boolean } = {}): WriteHandle =>
    createWriteHandle({ store, key, ...(existing && { existing }), truncate: flags.truncate ?? false, append: flags.append ?? false, writePath, logger });

  const stagingFiles = async () => fsp.readdir(stagingDir);

  it('switches to staging on a backwards write after parts went up: commits the prefix, then rewrites the object right', async () => {
    const writePath = writePathWith({ partSizeBytes: 5 * MiB });
    const handle = open(writePath, 'ckpt.tar');
    const data = pattern(12 * MiB);
    for (let at = 0; at < data.length; at += MiB) await handle.write(at, data.subarray(at, at + MiB));
    // A tar/zip writer going back to patch a header.
    await handle.write(100, Buffer.from('HEADER'));
    expect(handle.kind).toBe('staging');
    // The bytes streamed so far became a durable object at the switch: no orphan parts.
    expect(store.inner.pendingUploads()).toEqual([]);
    expect((await store.content('ckpt.tar')).equals(data)).toBe(true);
    await handle.write(data.length, Buffer.from('tail'));
    await handle.flush();
    await handle.release();
    const expected = Buffer.concat([data, Buffer.from('tail')]);
    Buffer.from('HEADER').copy(expected, 100);
    expect((await store.content('ckpt.tar')).equals(expected)).toBe(true);
    expect(store.inner.pendingUploads()).toEqual([]);
    expect(writePath.budget.used).toBe(writePath.parts.freeBytes); // only recycled free part buffers stay reserved
    expect(await stagingFiles()).toEqual([]);
  });

  it('switches a small file to staging in memory: nothing reaches the store before flush', async () => {
    const handle = open(writePathWith(), 'notes.txt');
    await handle.write(0, Buffer.from('hello world'));
    await handle.write(0, Buffer.from('J'));
    expect(handle.kind).toBe('staging');
    expect(store.calls).toEqual([]);
    await handle.flush();
    await handle.release();
    expect((await store.content('notes.txt')).toString()).toBe('Jello world');
    expect(store.callsOf('put')).toHaveLength(1);
  });

  it('serves reads of an open-for-write file, switching when unflushed data is read', async () => {
    const handle = open(writePathWith(), 'readback');
    await handle.write(0, Buffer.from('abcdef'));
    expect(await handle.read(6, 10)).toEqual(Buffer.alloc(0));
    expect(handle.kind).toBe('streaming');
    expect((await handle.read(2, 3)).toString()).toBe('cde');
    expect(handle.kind).toBe('staging');
    await handle.write(6, Buffer.from('gh'));
    expect((await handle.read(0, 100)).toString()).toBe('abcdefgh');
    await handle.flush();
    await handle.release();
    expect((await store.content('readback')).toString()).toBe('abcdefgh');
  });

  it('appends to an existing object with O_APPEND, whatever offset the kernel sends', async () => {
    const existing = await store.inner.put('log.txt', Buffer.from('hello '));
    const handle = open(writePathWith(), 'log.txt', existing, { append: true });
    expect(handle.kind).toBe('staging');
    expect(handle.size).toBe(6);
    await handle.write(0, Buffer.from('world'));
    await handle.write(3, Buffer.from('!'));
    await handle.flush();
    await handle.release();
    expect((await store.content('log.txt')).toString()).toBe('hello world!');
  });

  it('appends at offset = existing size without O_APPEND, fetching the old bytes only at flush', async () => {
    const old = pattern(20 * MiB, 3);
    const existing = await store.inner.put('data.bin', old);
    const writePath = writePathWith();
    const handle = open(writePath, 'data.bin', existing);
    await handle.write(old.length, Buffer.from('more'));
    expect(store.callsOf('get')).toEqual([]);
    await handle.flush();
    await handle.release();
    expect((await store.content('data.bin')).equals(Buffer.concat([old, Buffer.from('more')]))).toBe(true);
    // 20 MiB fetched in seedRangeBytes (8 MiB) GETs, uploaded as a multipart upload (above singlePutMaxBytes).
    expect(store.callsOf('get').map((call) => call.range)).toEqual([
      { start: 0, end: 8 * MiB }, { start: 8 * MiB, end: 16 * MiB }, { start: 16 * MiB, end: 20 * MiB },
    ]);
    expect(store.callsOf('complete')).toHaveLength(1);
    expect(writePath.budget.used).toBe(writePath.parts.freeBytes); // only recycled free part buffers stay reserved
  });

  it('overwrites a range in the middle of an existing object, fetching only what the writes do not cover', async () => {
    const old = pattern(3 * MiB, 4);
    const existing = await store.inner.put('weights', old);
    const handle = open(writePathWith({ seedRangeBytes: MiB }), 'weights', existing);
    const patch = Buffer.alloc(MiB, 0xab);
    await handle.write(MiB, patch);
    expect((await handle.read(MiB - 2, 4))).toEqual(Buffer.from([old[MiB - 2]!, old[MiB - 1]!, 0xab, 0xab]));
    expect(store.callsOf('get').map((call) => call.range)).toEqual([{ start: 0, end: MiB }]);
    await handle.flush();
    await handle.release();
    const expected = Buffer.from(old);
    patch.copy(expected, MiB);
    expect((await store.content('weights')).equals(expected)).toBe(true);
    expect(store.callsOf('get').map((call) => call.range)).toEqual([{ start: 0, end: MiB }, { start: 2 * MiB, end: 3 * MiB }]);
  });

  it('rewrites an existing object fully without O_TRUNC and downloads nothing', async () => {
    const existing = await store.inner.put('config.json', Buffer.from('{"old": true}'));
    const handle = open(writePathWith(), 'config.json', existing);
    await handle.write(0, Buffer.from('{"new": 1, "longer": true}'));
    await handle.flush();
    await handle.release();
    expect((await store.content('config.json')).toString()).toBe('{"new": 1, "longer": true}');
    expect(store.callsOf('get')).toEqual([]);
  });

  it('does not upload a file opened for writing but left unchanged', async () => {
    const existing = await store.inner.put('same', Buffer.from('x'));
    const handle = open(writePathWith(), 'same', existing);
    await handle.flush();
    await handle.fsync();
    await handle.release();
    expect(store.calls).toEqual([]);
  });

  it('truncates through the handle: shrink, then grow with zeros', async () => {
    const existing = await store.inner.put('t', Buffer.from('0123456789'));
    const handle = open(writePathWith(), 't', existing);
    await handle.truncate(4);
    expect(handle.size).toBe(4);
    await handle.truncate(6);
    await handle.flush();
    await handle.release();
    expect(await store.content('t')).toEqual(Buffer.from([0x30, 0x31, 0x32, 0x33, 0, 0]));
    // Only the kept bytes were fetched.
    expect(store.callsOf('get').map((call) => call.range)).toEqual([{ start: 0, end: 4 }]);
  });

  it('ftruncate of a streaming file switches to staging and keeps the bytes before the cut', async () => {
    const handle = open(writePathWith({ partSizeBytes: 5 * MiB }), 'cut');
    const data = pattern(7 * MiB, 5);
    await handle.write(0, data);
    await handle.truncate(6 * MiB);
    expect(handle.kind).toBe('staging');
    await handle.flush();
    await handle.release();
    expect((await store.content('cut')).equals(data.subarray(0, 6 * MiB))).toBe(true);
  });

  it('truncateObject: to 0 is an empty put, to N keeps N bytes, past the end adds zeros', async () => {
    const writePath = writePathWith();
    let info = await store.inner.put('x', Buffer.from('abcdef'));
    info = await truncateObject({ store, key: 'x', existing: info, size: 3, writePath, logger });
    expect(info.size).toBe(3);
    expect((await store.content('x')).toString()).toBe('abc');
    info = await truncateObject({ store, key: 'x', existing: info, size: 5, writePath, logger });
    expect(await store.content('x')).toEqual(Buffer.from([0x61, 0x62, 0x63, 0, 0]));
    const before = store.calls.length;
    info = await truncateObject({ store, key: 'x', existing: info, size: 0, writePath, logger });
    expect(store.calls.slice(before)).toEqual([{ op: 'put', key: 'x', bytes: 0 }]);
    expect(info.size).toBe(0);
    expect(await stagingFiles()).toEqual([]);
  });

  it('truncateObject fails with EIO when the object changed under it', async () => {
    const writePath = writePathWith();
    const info = await store.inner.put('y', Buffer.from('abcdef'));
    await store.inner.put('y', Buffer.from('ABCDEF'));
    await expect(truncateObject({ store, key: 'y', existing: info, size: 3, writePath, logger })).rejects.toMatchObject({ errno: Errno.EIO });
    expect((await store.content('y')).toString()).toBe('ABCDEF');
  });

  it('fsync in the middle of a stream makes the bytes so far durable; later writes and close give the right final content', async () => {
    const writePath = writePathWith({ partSizeBytes: 5 * MiB });
    const handle = open(writePath, 'resume.pt');
    const first = pattern(7 * MiB, 6);
    const second = pattern(3 * MiB, 7);
    const third = pattern(MiB, 8);
    await handle.write(0, first);
    await handle.fsync();
    expect((await store.content('resume.pt')).equals(first)).toBe(true);
    expect(store.inner.pendingUploads()).toEqual([]);
    await handle.write(first.length, second);
    await handle.fsync();
    expect((await store.content('resume.pt')).equals(Buffer.concat([first, second]))).toBe(true);
    await handle.write(first.length + second.length, third);
    await handle.flush();
    await handle.release();
    expect((await store.content('resume.pt')).equals(Buffer.concat([first, second, third]))).toBe(true);
    expect(store.inner.pendingUploads()).toEqual([]);
    expect(writePath.budget.used).toBe(writePath.parts.freeBytes); // only recycled free part buffers stay reserved
  });

  it('refuses staging writes with ENOSPC when the staging directory is below its free-space floor', async () => {
    const existing = await store.inner.put('big', Buffer.from('abc'));
    const writePath = writePathWith({ stagingMinFreeBytes: 10 * MiB }, async () => 10 * MiB + 100);
    const handle = open(writePath, 'big', existing);
    await handle.write(3, Buffer.alloc(50));
    await expect(handle.write(53, Buffer.alloc(1000))).rejects.toMatchObject({ errno: Errno.ENOSPC });
    // Not sticky: what is staged still uploads.
    await handle.flush();
    await handle.release();
    expect((await store.content('big')).length).toBe(53);
  });

  it('reports ENOSPC when a stream switching to staging cannot spill, and then fails for good', async () => {
    const writePath = writePathWith({ stagingMinFreeBytes: MiB }, async () => MiB);
    const handle = open(writePath, 'spill');
    await handle.write(0, Buffer.from('abc'));
    await expect(handle.write(0, Buffer.from('x'))).rejects.toMatchObject({ errno: Errno.ENOSPC });
    await expect(handle.flush()).rejects.toMatchObject({ errno: Errno.ENOSPC });
    await handle.release();
    expect(store.inner.keys()).toEqual([]);
  });

  it('keeps staged bytes after a failed upload, so a later flush succeeds', async () => {
    const existing = await store.inner.put('retry', Buffer.from('a'));
    const handle = open(writePathWith(), 'retry', existing, { append: true });
    await handle.write(0, Buffer.from('b'));
    store.inner.failNext('put', 'Unavailable');
    await expect(handle.flush()).rejects.toMatchObject({ errno: Errno.EIO });
    await handle.flush();
    await handle.release();
    expect((await store.content('retry')).toString()).toBe('ab');
  });

  it('aborts a failed multipart upload of a staging file, leaving no part behind', async () => {
    const old = pattern(18 * MiB, 9);
    const existing = await store.inner.put('mp', old);
    const writePath = writePathWith({ partSizeBytes: 5 * MiB, singlePutMaxBytes: 5 * MiB });
    const handle = open(writePath, 'mp', existing);
    await handle.write(0, Buffer.from('Z'));
    store.inner.failNext('uploadPart', 'Unavailable');
    await expect(handle.flush()).rejects.toMatchObject({ errno: Errno.EIO });
    await writePath.uploads.aborter.idle(); // the abort runs in the background
    expect(store.inner.pendingUploads()).toEqual([]);
    expect((await store.content('mp')).equals(old)).toBe(true);
    await handle.release();
    expect(writePath.budget.used).toBe(writePath.parts.freeBytes); // only recycled free part buffers stay reserved
  });

  it('leaves no staging file on disk, even while open (unlinked at creation)', async () => {
    const existing = await store.inner.put('z', Buffer.from('abc'));
    const handle = open(writePathWith(), 'z', existing);
    await handle.write(1, Buffer.from('X'));
    expect(await stagingFiles()).toEqual([]);
    await handle.release();
  });
});
