// No multipart upload is left behind by a write that fails or a mount that dies. Through real granary mounts on a
// real S3 server, checked with ListMultipartUploads from the SDK (outside granary):
// 1. a mount SIGKILLed mid-write leaves its upload; a new mount with the same state directory aborts it at start;
// 2. with the store SIGKILLed mid-write the writer gets EIO at once, the abort fails and is retried in the
//    background, and once the store is back (same data, same port) the upload is gone.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ListMultipartUploadsCommand, ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';
import { mountGranary, s3MountEnv, stopAllMounts, withMountLog, type GranaryMount } from '../support/mount';
import { createBucket, restartS3Server, s3Client, startS3Server, testS3, type S3Server, type TestS3 } from '../support/s3-server';
import { deleteBucket, makeTemp, MiB, removeTemp, spawnStepped, type SteppedChild } from './helpers';

jest.setTimeout(300_000);

const PREFIX = 'runs/orphans/';
const WAIT_MS = 120_000;
/** The writer writes this much, then waits: three 8 MiB parts fill and go up while the file is open. */
const FIRST_PART_OF_FILE = 24 * MiB;
/** The upload counts as under way once the store holds this much of it in parts. */
const UPLOADED_GATE = 16 * MiB;

/**
 * python3: writes FIRST MiB of random bytes into FILE, prints "written", waits for a line, writes REST MiB more and
 * closes; prints "failed <errno>" and exits 1 on the first error (write or close).
 */
const STEPPED_WRITER = `
import os, sys
path, first, rest = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for _ in range(first):
        os.write(fd, os.urandom(1 << 20))
    print('written', flush=True)
    sys.stdin.readline()
    for _ in range(rest):
        os.write(fd, os.urandom(1 << 20))
    os.close(fd)
except OSError as error:
    print('failed', error.errno, flush=True)
    sys.exit(1)
print('closed', flush=True)
`;

let base: string;
const clients: S3Client[] = [];
const buckets: Array<[S3Client, string]> = [];

beforeAll(() => {
  base = makeTemp('orphaned-uploads');
});

afterAll(async () => {
  await stopAllMounts();
  for (const [client, bucket] of buckets) await deleteBucket(client, bucket).catch(() => undefined);
  for (const client of clients) client.destroy();
  removeTemp(base);
});

/** The unfinished uploads of `bucket`, as the store lists them. */
async function uploadsOf(client: S3Client, bucket: string): Promise<Array<{ key: string; uploadId: string }>> {
  const output = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (output.Uploads ?? []).map((upload) => ({ key: upload.Key ?? '', uploadId: upload.UploadId ?? '' }));
}

/** Bytes the store holds in parts of an upload. */
async function uploadedBytes(client: S3Client, bucket: string, key: string, uploadId: string): Promise<number> {
  const output = await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
  return (output.Parts ?? []).reduce((sum, part) => sum + (part.Size ?? 0), 0);
}

/** Polls until `bucket` has an upload of `key` with at least UPLOADED_GATE bytes in parts; returns its id. */
async function waitForUploadUnderWay(client: S3Client, bucket: string, key: string): Promise<string> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const upload = (await uploadsOf(client, bucket)).find((candidate) => candidate.key === key);
    if (upload && (await uploadedBytes(client, bucket, key, upload.uploadId)) >= UPLOADED_GATE) return upload.uploadId;
    if (Date.now() > deadline) throw new Error(`no upload of ${key} with ${UPLOADED_GATE} bytes in parts within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Polls `check` until it holds, for up to WAIT_MS; throws with `what` otherwise. */
async function eventually(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function setUp(server: S3Server | TestS3, stem: string): Promise<{ client: S3Client; bucket: string; mountpoint: string; stateDir: string }> {
  const client = s3Client(server);
  clients.push(client);
  const bucket = await createBucket(server, stem);
  buckets.push([client, bucket]);
  const mountpoint = path.join(base, `${stem}-mnt`);
  fs.mkdirSync(mountpoint);
  return { client, bucket, mountpoint, stateDir: path.join(base, `${stem}-state`) };
}

describe('a mount SIGKILLed mid-write', () => {
  let mount: GranaryMount | undefined;

  it('leaves its upload, which the next mount with the same state directory aborts at start', withMountLog(() => mount, async () => {
    const { client, bucket, mountpoint, stateDir } = await setUp(testS3(), 'killed-mount');
    const mountWith = () => mountGranary({ source: `s3://${bucket}/${PREFIX}`, mountpoint, env: s3MountEnv(testS3()), args: ['--state-dir', stateDir] });
    mount = await mountWith();
    const file = 'step-300.pt';
    const writer = spawnStepped('python3', ['-c', STEPPED_WRITER, path.join(mountpoint, file), String(FIRST_PART_OF_FILE / MiB), '8']);
    expect(await writer.nextLine()).toBe('written');
    const uploadId = await waitForUploadUnderWay(client, bucket, PREFIX + file);
    // The record names it before its first part went up.
    const record = JSON.parse(fs.readFileSync(path.join(stateDir, 'uploads.json'), 'utf8')) as { uploads: Array<{ bucket: string; key: string; uploadId: string }> };
    expect(record.uploads).toEqual([expect.objectContaining({ bucket, key: PREFIX + file, uploadId })]);

    mount.child.kill('SIGKILL');
    await mount.stop(); // the process is gone: this lazily unmounts the dead mountpoint
    await finish(writer);
    expect(await uploadsOf(client, bucket)).toEqual([{ key: PREFIX + file, uploadId }]);

    mount = await mountWith();
    await eventually('the predecessor\'s upload is aborted', async () => (await uploadsOf(client, bucket)).length === 0);
    await eventually('the mount logs how many it aborted', () => /aborted 1 of the 1 multipart uploads a previous mount left unfinished/.test((mount as GranaryMount).log()));
    await mount.stop();
    expect(JSON.parse(fs.readFileSync(path.join(stateDir, 'uploads.json'), 'utf8'))).toEqual({ version: 1, uploads: [] });
  }));
});

describe('a write while the store is down', () => {
  let server: S3Server | undefined;
  let mount: GranaryMount | undefined;

  afterAll(async () => {
    await mount?.stop();
    await server?.stop();
  });

  it('answers EIO, and the abort is retried until the store is back', withMountLog(() => mount, async () => {
    const dataDir = path.join(base, 'store-down-data');
    fs.mkdirSync(dataDir);
    server = await startS3Server({ dataDir });
    const { client, bucket, mountpoint, stateDir } = await setUp(server, 'store-down');
    mount = await mountGranary({ source: `s3://${bucket}/${PREFIX}`, mountpoint, env: s3MountEnv(server), args: ['--state-dir', stateDir] });
    const file = 'step-400.pt';
    const writer = spawnStepped('python3', ['-c', STEPPED_WRITER, path.join(mountpoint, file), String(FIRST_PART_OF_FILE / MiB), '24']);
    expect(await writer.nextLine()).toBe('written');
    const uploadId = await waitForUploadUnderWay(client, bucket, PREFIX + file);

    await server.kill();
    writer.proceed();
    // EIO (errno 5) from a write or the close: the writer is told, and the mount aborts the upload in the background.
    expect(await writer.nextLine()).toBe('failed 5');
    expect((await writer.finished).code).toBe(1);
    // Forced, not hoped for: the store refuses the first abort, and the mount says it will retry.
    await eventually('the mount retries the failed abort', () => (mount as GranaryMount).log().includes('abort of a multipart upload failed; retrying'));

    server = await restartS3Server(server);
    expect((await uploadsOf(client, bucket)).map((upload) => upload.uploadId)).toEqual([uploadId]);
    await eventually('the retried abort removes the upload', async () => (await uploadsOf(client, bucket)).length === 0);
    // The mount logs after the store answered the abort: the log line may arrive after the upload is gone.
    await eventually('the mount logs the retried abort', () => (mount as GranaryMount).log().includes('aborted the multipart upload after retrying'));
    await eventually('the record forgets it', () => JSON.parse(fs.readFileSync(path.join(stateDir, 'uploads.json'), 'utf8')).uploads.length === 0);
  }));
});

/** Lets a stepped writer go on after its mount died, and waits for it (its writes and close fail: ENOTCONN). */
async function finish(writer: SteppedChild): Promise<void> {
  writer.proceed();
  await writer.finished;
}
