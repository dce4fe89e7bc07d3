// A mount outlives the process that serves it. `granary mount` is a holder that keeps the FUSE connection and runs the
// serving process; here that process is killed with SIGKILL while 8 readers stream a 1 GiB model and a loop lists the
// volume, three times: every read completes with the right bytes, no call fails, and the mount log records each
// takeover with the time the connection went unserved. A writer whose serving process dies learns it at its next call
// (EIO), and the bucket holds what it had made durable before, whole, and never a part of what was lost.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { mountGranary, s3MountEnv, stopAllMounts, type GranaryMount } from '../support/mount';
import { servingProcess } from '../support/mount-holder';
import { createBucket, s3Client, testS3 } from '../support/s3-server';
import { until } from '../support/until';
import { deleteBucket, getObject, makeTemp, MiB, putObjects, removeTemp, seededSha256, sha256, spawnStepped, uploadSeeded } from './helpers';

jest.setTimeout(600_000);

const MODEL_SIZE = 1024 * MiB;
const MODEL_SEED = 'takeover/model.bin';
const READERS = 8;
const KILLS = 3;
/** The listing loop's tree: 200 files in 10 directories. */
const TREE = Array.from({ length: 200 }, (_, i) => [`tree/d${i % 10}/f${i}.txt`, `file ${i}\n`] as const);

let client: S3Client;
let bucket: string;
let base: string;

/** Bytes process `pid` has read so far (/proc/PID/io rchar); 0 once it is gone. */
function bytesRead(pid: number): number {
  try {
    return Number(/rchar: (\d+)/.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** The lines of a mount log (JSON) whose msg matches `pattern`. */
function logLines(mount: GranaryMount, pattern: RegExp): Array<Record<string, unknown>> {
  return mount.log().split('\n').filter((line) => pattern.test(line)).map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Runs `command` to its end, resolving with its exit code and output. */
function finished(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

beforeAll(async () => {
  const server = testS3();
  client = s3Client(server);
  bucket = await createBucket(server, 'takeover');
  await uploadSeeded(client, bucket, 'vol/model.bin', MODEL_SEED, MODEL_SIZE);
  await putObjects(client, bucket, TREE.map(([key, body]) => [`vol/${key}`, body] as const));
  base = makeTemp('granary-takeover-');
});

afterAll(async () => {
  await stopAllMounts();
  await deleteBucket(client, bucket).catch(() => undefined);
  client.destroy();
  removeTemp(base);
});

test(`${READERS} readers of a 1 GiB model and an ls -lR loop see no error while the serving process is killed ${KILLS} times`, async () => {
  const mountpoint = path.join(base, 'readers');
  fs.mkdirSync(mountpoint);
  const mount = await mountGranary({ source: `s3://${bucket}/vol`, mountpoint, readOnly: true, env: s3MountEnv(testS3()), args: ['--state-dir', path.join(base, 'readers-state')] });
  try {
    const expected = seededSha256(MODEL_SEED, MODEL_SIZE);
    const readers = Array.from({ length: READERS }, () => spawn('sha256sum', [path.join(mountpoint, 'model.bin')], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const results = readers.map(finished);
    const stopListing = path.join(base, 'stop-listing');
    const lister = spawn('bash', ['-c', 'n=0; while [ ! -e "$1" ]; do ls -lR "$2" > /dev/null || exit 1; n=$((n+1)); done; echo $n', 'lister', stopListing, path.join(mountpoint, 'tree')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const listed = finished(lister);

    for (let kill = 1; kill <= KILLS; kill++) {
      // Each kill lands while every reader is mid-file: after it has read a share of the model, and before the end.
      const share = (kill * MODEL_SIZE) / (KILLS + 1);
      await until(() => readers.every((reader) => bytesRead(reader.pid as number) >= share), `every reader has read ${share / MiB} MiB`, 300_000);
      const server = servingProcess(mount.child.pid as number);
      expect(server).toBeDefined();
      process.kill(server as number, 'SIGKILL');
      await until(() => logLines(mount, /took over the FUSE session/).length >= kill, `takeover ${kill} is logged`, 60_000);
      expect(readers.every((reader) => reader.exitCode === null)).toBe(true);
    }
    const outcomes = await Promise.all(results);
    fs.writeFileSync(stopListing, '');
    const listing = await listed;
    for (const outcome of outcomes) {
      expect({ code: outcome.code, stderr: outcome.stderr }).toEqual({ code: 0, stderr: '' });
      expect(outcome.stdout.split(' ')[0]).toBe(expected);
    }
    expect({ code: listing.code, stderr: listing.stderr }).toEqual({ code: 0, stderr: '' });
    expect(Number(listing.stdout.trim())).toBeGreaterThan(0);
    const takeovers = logLines(mount, /took over the FUSE session/);
    expect(takeovers).toHaveLength(KILLS);
    for (const takeover of takeovers) expect(takeover).toMatchObject({ unservedMs: expect.any(Number), resent: true });
    expect(logLines(mount, /serving process died: starting a new one/)).toHaveLength(KILLS);
    console.log(`takeovers: unserved ${takeovers.map((line) => line.unservedMs).join(', ')} ms; ls -lR ran ${listing.stdout.trim()} times`);
  } catch (error) {
    (error as Error).message += `\n--- mount log ---\n${mount.logTail(60)}`;
    throw error;
  }
});

/**
 * A writer driven step by step: writes FILE_A whole and closes it (acknowledged), then writes 10 MiB of FILE_B, then
 * (after the test killed the serving process) writes more, fsyncs and closes, printing each outcome.
 */
const WRITER = `
import os, sys
a, b = sys.argv[1], sys.argv[2]
data = bytes(range(256)) * 4096
with open(a, 'wb') as f:
    for _ in range(8):
        f.write(data)
print('a-closed', flush=True)
fd = os.open(b, os.O_WRONLY | os.O_TRUNC)
for _ in range(10):
    os.write(fd, data)
print('b-written', flush=True)
sys.stdin.readline()
for step, call in (('write', lambda: os.write(fd, data)), ('fsync', lambda: os.fsync(fd)), ('close', lambda: os.close(fd))):
    try:
        call()
        print(step, 'OK', flush=True)
    except OSError as error:
        print(step, error.strerror, flush=True)
`;

test('a writer whose serving process dies gets EIO at its next call; the bucket keeps what it acknowledged and the old object', async () => {
  const mountpoint = path.join(base, 'writer');
  fs.mkdirSync(mountpoint);
  const old = Buffer.from('the old checkpoint, which must stay whole');
  await putObjects(client, bucket, [['vol/ckpt/b.bin', old]]);
  const mount = await mountGranary({ source: `s3://${bucket}/vol`, mountpoint, env: s3MountEnv(testS3()), args: ['--state-dir', path.join(base, 'writer-state')] });
  try {
    const writer = spawnStepped('python3', ['-c', WRITER, path.join(mountpoint, 'ckpt', 'a.bin'), path.join(mountpoint, 'ckpt', 'b.bin')]);
    expect(await writer.nextLine()).toBe('a-closed');
    expect(await writer.nextLine()).toBe('b-written');
    const uploads = async () => (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'vol/ckpt/' }))).Uploads ?? [];
    // 10 MiB written: b.bin's multipart upload has begun (its first part is full) when the serving process dies.
    await until(async () => (await uploads()).length === 1, 'the multipart upload of b.bin exists', 60_000);
    const server = servingProcess(mount.child.pid as number);
    process.kill(server as number, 'SIGKILL');
    await until(() => logLines(mount, /took over the FUSE session/).length >= 1, 'the takeover is logged', 60_000);
    writer.proceed();
    expect([await writer.nextLine(), await writer.nextLine(), await writer.nextLine()]).toEqual(['write Input/output error', 'fsync Input/output error', 'close Input/output error']);
    expect((await writer.finished).code).toBe(0);
    // Acknowledged before the crash: whole. In flight: never published, the old object stays.
    const written = Buffer.alloc(8 * MiB);
    for (let i = 0; i < written.length; i++) written[i] = i & 0xff;
    expect(sha256(await getObject(client, bucket, 'vol/ckpt/a.bin'))).toBe(sha256(written));
    expect((await getObject(client, bucket, 'vol/ckpt/b.bin')).equals(old)).toBe(true);
    // The dead process's multipart upload of b.bin is aborted by its successor (its upload record), not left to bill.
    await until(async () => (await uploads()).length === 0, 'no multipart upload is left under vol/ckpt/', 60_000);
    // The same mount goes on serving.
    fs.writeFileSync(path.join(mountpoint, 'ckpt', 'after.txt'), 'after the takeover');
    expect((await getObject(client, bucket, 'vol/ckpt/after.txt')).toString()).toBe('after the takeover');
  } catch (error) {
    (error as Error).message += `\n--- mount log ---\n${mount.logTail(60)}`;
    throw error;
  }
});
