// The record of unfinished multipart uploads (uploads.json in a real temporary state directory), and the
// MultipartUploads that keeps it: recorded before the first part, forgotten at complete or abort, and a new mount
// aborting what its predecessor left.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../../log/logger';
import { MemoryStore } from '../../objectstore/memory';
import { createWritePath } from './write-path';
import { MAX_RECORDED_UPLOADS, UPLOADS_FILE, UploadRecord, type RecordedUpload } from './upload-record';

const logger = silentLogger();
const MiB = 1024 * 1024;

const upload = (n: number, bucket = 'bucket'): RecordedUpload => ({ bucket, key: `ckpt/${n}.pt`, uploadId: `id-${n}`, startedAt: '2026-01-01T00:00:00.000Z' });

describe('UploadRecord', () => {
  let dir: string;
  beforeEach(async () => {
    dir = path.join(await fsp.mkdtemp(path.join(os.tmpdir(), 'granary-state-')), 'volume');
  });
  afterEach(async () => {
    await fsp.rm(path.dirname(dir), { recursive: true, force: true });
  });

  const onDisk = async (): Promise<string[]> => {
    const parsed = JSON.parse(await fsp.readFile(path.join(dir, UPLOADS_FILE), 'utf8')) as { uploads: RecordedUpload[] };
    return parsed.uploads.map((entry) => entry.uploadId);
  };

  it('has the upload on disk when add() resolves, creating the state directory (0700) on the first write', async () => {
    const record = new UploadRecord(dir, logger);
    await record.add(upload(1));
    expect(await onDisk()).toEqual(['id-1']);
    expect((await fsp.stat(dir)).mode & 0o777).toBe(0o700);
    expect((await fsp.stat(path.join(dir, UPLOADS_FILE))).mode & 0o777).toBe(0o600);
  });

  it('forgets removed uploads on disk, coalesces a burst of changes, and leaves no temporary file', async () => {
    const record = new UploadRecord(dir, logger);
    await Promise.all(Array.from({ length: 50 }, (_, n) => record.add(upload(n))));
    expect((await onDisk()).sort()).toEqual(Array.from({ length: 50 }, (_, n) => `id-${n}`).sort());
    for (let n = 0; n < 49; n++) void record.remove(`id-${n}`);
    await record.flushed();
    expect(await onDisk()).toEqual(['id-49']);
    expect(await fsp.readdir(dir)).toEqual([UPLOADS_FILE]);
  });

  it('loads what a previous mount left, and keeps it until removed', async () => {
    const previous = new UploadRecord(dir, logger);
    await previous.add(upload(1));
    await previous.add(upload(2));
    const next = new UploadRecord(dir, logger);
    expect((await next.load()).map((entry) => entry.uploadId)).toEqual(['id-1', 'id-2']);
    await next.add(upload(3));
    expect(await onDisk()).toEqual(['id-1', 'id-2', 'id-3']);
    await next.remove('id-1');
    expect(await onDisk()).toEqual(['id-2', 'id-3']);
  });

  it('treats a missing file as empty and ignores a corrupt one', async () => {
    expect(await new UploadRecord(dir, logger).load()).toEqual([]);
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(path.join(dir, UPLOADS_FILE), '{"version":1,"uploads":[{"key":');
    expect(await new UploadRecord(dir, logger).load()).toEqual([]);
  });

  it('is bounded: past its cap an upload is not recorded', async () => {
    expect(MAX_RECORDED_UPLOADS).toBe(10_000);
    const record = new UploadRecord(dir, logger, 3);
    for (let n = 0; n < 5; n++) await record.add(upload(n));
    expect(await onDisk()).toEqual(['id-0', 'id-1', 'id-2']);
  });
});

describe('MultipartUploads with a record', () => {
  let dir: string;
  let stagingDir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'granary-state-'));
    stagingDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'granary-staging-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.rm(stagingDir, { recursive: true, force: true });
  });

  const writePathOver = (record: UploadRecord) =>
    createWritePath({ stagingDir, stagingMinFreeBytes: 0, abortRetryDelayMs: 0 }, { record, bucket: 'bucket', logger });
  const recordedIds = async () => (await new UploadRecord(dir, logger).load()).map((entry) => entry.uploadId);

  it('records an upload before its first part, forgets it at complete and at abandon', async () => {
    const store = new MemoryStore();
    const record = new UploadRecord(dir, logger);
    const uploads = writePathOver(record).uploads;
    const first = await uploads.start(store, 'ckpt/a.pt');
    const second = await uploads.start(store, 'ckpt/b.pt');
    expect(await recordedIds()).toHaveLength(2);
    expect(record.uploads.map((entry) => entry.key)).toEqual(['ckpt/a.pt', 'ckpt/b.pt']);
    await first.uploadPart(1, Buffer.alloc(MiB));
    await first.complete();
    second.abandon();
    await uploads.aborter.idle();
    await record.flushed();
    expect(await recordedIds()).toEqual([]);
    expect(store.pendingUploads()).toEqual([]);
  });

  it('a new mount aborts the uploads its killed predecessor recorded, and forgets them; other buckets are only logged', async () => {
    const store = new MemoryStore();
    // The predecessor: two uploads started and recorded, then the process "dies" (nothing completes or aborts them).
    const predecessor = writePathOver(new UploadRecord(dir, logger)).uploads;
    await predecessor.start(store, 'ckpt/a.pt');
    await predecessor.start(store, 'ckpt/b.pt');
    const foreign = new UploadRecord(dir, logger);
    await foreign.load();
    await foreign.add(upload(9, 'another-bucket'));
    expect(store.pendingUploads().sort()).toEqual(['ckpt/a.pt', 'ckpt/b.pt']);

    const record = new UploadRecord(dir, logger);
    const uploads = writePathOver(record).uploads;
    expect(await uploads.abortPrevious(store)).toBe(2);
    await uploads.aborter.idle();
    await record.flushed();
    expect(store.pendingUploads()).toEqual([]);
    expect(await recordedIds()).toEqual([]);
  });

  it('retries an abort the store refuses, and keeps the upload recorded until it succeeds', async () => {
    const store = new MemoryStore();
    const record = new UploadRecord(dir, logger);
    let wake: () => void = () => undefined;
    let slept: () => void = () => undefined;
    let sleeping = new Promise<void>((resolve) => (slept = resolve));
    const sleep = () => new Promise<void>((resolve) => {
      wake = resolve;
      slept();
    });
    const uploads = createWritePath({ stagingDir, stagingMinFreeBytes: 0 }, { record, bucket: 'bucket', logger, sleep }).uploads;
    const started = await uploads.start(store, 'ckpt/a.pt');
    store.failNext('abort', 'Unavailable');
    store.failNext('abort', 'Unavailable');
    started.abandon();
    for (let retry = 0; retry < 2; retry++) {
      await sleeping;
      // Between tries the upload is still pending in the store, and still recorded.
      expect(store.pendingUploads()).toEqual(['ckpt/a.pt']);
      expect(await recordedIds()).toHaveLength(1);
      sleeping = new Promise<void>((resolve) => (slept = resolve));
      wake();
    }
    await uploads.aborter.idle();
    await record.flushed();
    expect(store.pendingUploads()).toEqual([]);
    expect(await recordedIds()).toEqual([]);
  });
});
