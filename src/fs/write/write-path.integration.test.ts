// The write path against the real S3-compatible server (no FUSE): large streamed files, the abort paths, staging.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createBucket, s3Client, testS3, type TestS3 } from '../../../e2e/support/s3-server';
import { silentLogger } from '../../log/logger';
import { ObjectStoreError } from '../../objectstore/errors';
import { S3Store } from '../../objectstore/s3';
import type { MultipartUpload, ObjectStore } from '../../objectstore/store';
import { Errno } from '../errno';
import { createWriteHandle, type WriteHandle } from './write-handle';
import { createWritePath, type WritePath } from './write-path';
import { temporaryStagingDir } from './testing';

const MiB = 1024 * 1024;
const logger = silentLogger();
jest.setTimeout(180_000);

describe('write path against the real S3 server', () => {
  let server: TestS3;
  let bucket: string;
  let store: S3Store;
  let client: S3Client;
  let stagingDir: string;
  let writePath: WritePath;

  beforeAll(async () => {
    server = testS3();
    bucket = await createBucket(server, 'write');
    store = new S3Store({
      bucket,
      endpoint: server.endpoint,
      region: server.region,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    }, {});
    client = s3Client(server);
    stagingDir = await temporaryStagingDir();
    writePath = createWritePath({ stagingDir, stagingMinFreeBytes: 0 });
  });
  afterAll(async () => {
    store.close();
    client.destroy();
    await fsp.rm(stagingDir, { recursive: true, force: true });
  });

  const pendingUploads = async (): Promise<string[]> => {
    const output = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    return (output.Uploads ?? []).map((upload) => upload.Key ?? '');
  };
  const sha256Of = async (key: string): Promise<string> => {
    const output = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const hash = createHash('sha256');
    for await (const chunk of output.Body as AsyncIterable<Buffer>) hash.update(chunk);
    return hash.digest('hex');
  };
  const exists = async (key: string): Promise<boolean> =>
    client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(() => true, () => false);
  const newFile = (key: string, through: ObjectStore = store, path: WritePath = writePath): WriteHandle =>
    createWriteHandle({ store: through, key, truncate: false, append: false, writePath: path, logger });

  /** Writes `size` random bytes in 1 MiB writes and returns their sha256. */
  async function writeRandom(handle: WriteHandle, size: number, from = 0): Promise<string> {
    const hash = createHash('sha256');
    for (let at = from; at < from + size; at += MiB) {
      const chunk = randomBytes(Math.min(MiB, from + size - at));
      hash.update(chunk);
      await handle.write(at, chunk);
    }
    return hash.digest('hex');
  }

  it('streams 200 MiB of random data; after flush the object read with the raw SDK has the same sha256', async () => {
    const handle = newFile('checkpoints/step-1000.pt');
    const started = Date.now();
    const written = await writeRandom(handle, 200 * MiB);
    expect(handle.kind).toBe('streaming');
    await handle.flush();
    const seconds = (Date.now() - started) / 1000;
    await handle.release();
    expect(await sha256Of('checkpoints/step-1000.pt')).toBe(written);
    expect(await pendingUploads()).toEqual([]);
    expect(writePath.budget.used).toBe(writePath.parts.freeBytes); // only recycled free part buffers stay reserved
    console.log(`streamed 200 MiB in ${seconds.toFixed(2)} s (${(200 / seconds).toFixed(0)} MiB/s), peak part memory ${writePath.budget.peak / MiB} MiB`);
  });

  it('aborts the multipart upload when the flush failed before the release: no upload listed, no object', async () => {
    const failing = failingComplete(store);
    const handle = newFile('checkpoints/killed.pt', failing);
    await writeRandom(handle, 40 * MiB);
    expect(await pendingUploads()).toEqual(['checkpoints/killed.pt']);
    await expect(handle.flush()).rejects.toMatchObject({ errno: Errno.EIO });
    await handle.release();
    await writePath.uploads.aborter.idle(); // the abort runs in the background
    expect(await pendingUploads()).toEqual([]);
    expect(await exists('checkpoints/killed.pt')).toBe(false);
  });

  it('overwrites with O_TRUNC: a flush before any write leaves the old object, which is replaced only when the new one is complete', async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'checkpoints/latest.pt', Body: 'the previous checkpoint' }));
    const existing = await store.head('checkpoints/latest.pt');
    const handle = createWriteHandle({ store, key: 'checkpoints/latest.pt', existing, truncate: true, append: false, writePath, logger });
    await handle.flush(); // dd and shells: dup2, then close of the original descriptor
    const written = await writeRandom(handle, 24 * MiB);
    expect(await pendingUploads()).toEqual(['checkpoints/latest.pt']);
    const output = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'checkpoints/latest.pt' }));
    expect(await output.Body?.transformToString()).toBe('the previous checkpoint');
    await handle.flush();
    await handle.release();
    expect(await sha256Of('checkpoints/latest.pt')).toBe(written);
    expect(await pendingUploads()).toEqual([]);
  });

  it('aborts the multipart upload when a part fails: EIO, no upload listed, no object', async () => {
    const failing = failingThirdPart(store);
    const handle = newFile('checkpoints/failed.pt', failing);
    const failure = await writeRandom(handle, 40 * MiB).then(() => handle.flush()).then(() => undefined, (error: unknown) => error);
    expect(failure).toMatchObject({ errno: Errno.EIO });
    await handle.release();
    await writePath.uploads.aborter.idle();
    expect(await pendingUploads()).toEqual([]);
    expect(await exists('checkpoints/failed.pt')).toBe(false);
  });

  it('appends to an existing object through a staging file (round trip through the raw SDK)', async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'logs/train.log', Body: 'epoch 1 loss 0.9\n' }));
    const existing = await store.head('logs/train.log');
    const handle = createWriteHandle({ store, key: 'logs/train.log', existing, truncate: false, append: true, writePath, logger });
    expect(handle.kind).toBe('staging');
    await handle.write(0, Buffer.from('epoch 2 loss 0.5\n'));
    expect((await handle.read(0, 100)).toString()).toBe('epoch 1 loss 0.9\nepoch 2 loss 0.5\n');
    await handle.flush();
    await handle.release();
    const output = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'logs/train.log' }));
    expect(await output.Body?.transformToString()).toBe('epoch 1 loss 0.9\nepoch 2 loss 0.5\n');
  });

  it('switches a 64 MiB stream to staging on a backwards write, with the right final content (and measures it)', async () => {
    const handle = newFile('checkpoints/patched.zip');
    const data = randomBytes(64 * MiB);
    let started = Date.now();
    for (let at = 0; at < data.length; at += MiB) await handle.write(at, data.subarray(at, at + MiB));
    const streamMs = Date.now() - started;
    started = Date.now();
    await handle.write(0, Buffer.from('PK\x03\x04'));
    const switchMs = Date.now() - started;
    expect(handle.kind).toBe('staging');
    started = Date.now();
    await handle.flush();
    const flushMs = Date.now() - started;
    await handle.release();
    Buffer.from('PK\x03\x04').copy(data, 0);
    expect(await sha256Of('checkpoints/patched.zip')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(await pendingUploads()).toEqual([]);
    console.log(`64 MiB: stream ${streamMs} ms, switch (commit) ${switchMs} ms, flush after switch (fetch + re-upload) ${flushMs} ms`);
  });
});

/** A store whose multipart uploads fail at complete (as a store that went down before the close would). */
function failingComplete(inner: ObjectStore): ObjectStore {
  return Object.assign(Object.create(inner) as ObjectStore, {
    createMultipartUpload: async (key: string): Promise<MultipartUpload> => {
      const upload = await inner.createMultipartUpload(key);
      return {
        key,
        ...(upload.uploadId !== undefined && { uploadId: upload.uploadId }),
        uploadPart: (partNumber: number, body: Buffer) => upload.uploadPart(partNumber, body),
        complete: () => Promise.reject(new ObjectStoreError('Unavailable', `injected failure of the complete of "${key}"`)),
        abort: () => upload.abort(),
      };
    },
  });
}

/** A store whose multipart uploads fail on part 3 (as a dropped connection would, after retries). */
function failingThirdPart(inner: ObjectStore): ObjectStore {
  return Object.assign(Object.create(inner) as ObjectStore, {
    createMultipartUpload: async (key: string): Promise<MultipartUpload> => {
      const upload = await inner.createMultipartUpload(key);
      return {
        key,
        uploadPart: async (partNumber: number, body: Buffer) => {
          if (partNumber === 3) throw new ObjectStoreError('Unavailable', `injected failure of part 3 of "${key}"`);
          await upload.uploadPart(partNumber, body);
        },
        complete: () => upload.complete(),
        abort: () => upload.abort(),
      };
    },
  });
}
