// Overwriting an existing object through a real granary mount, with the writers people use: GNU dd, a bash
// redirection, cp and Python with os.dup2. Shells and dd open the file, dup2 the descriptor and close the
// original before writing, so the mount sees a FLUSH before any byte: that FLUSH must not replace the object.
// 1. With the store SIGKILLed mid-write (gated on the bytes the mount has taken) and started again on the same
//    data, the object is still the OLD content: it is replaced only when the new content is complete.
// 2. With the store up, each writer leaves exactly the NEW content, streaming: the staging directory is a tmpfs far
//    below the staging floor, so any write that went through staging would fail with ENOSPC.
// 3. A truncation with nothing written (`: > file`) or an empty new file is published when its last descriptor
//    goes (RELEASE), and this mount shows the right size in between; `rm` right after it leaves nothing behind.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mountGranary, s3MountEnv, stopAllMounts, withMountLog, type GranaryMount } from '../support/mount';
import { createBucket, restartS3Server, s3Client, startS3Server, type S3Server } from '../support/s3-server';
import {
  deleteBucket, listKeys, makeTemp, MiB, objectSha256, removeTemp, run, seededBytes, seededSha256, sha256, shellQuote, shOk, uploadSeeded, type RunResult,
} from './helpers';

jest.setTimeout(600_000);

const PREFIX = 'models/overwrite/';
/** The object being overwritten in the kill tests: large enough that its loss is not a rounding error. */
const OLD_SIZE = 128 * MiB;
/** What the writer is given before the store is killed: the writer then waits for more input, mid-file. */
const FED_BEFORE_KILL = 48 * MiB;
/** The store is killed once the mount has taken this much of the new content (several 8 MiB parts uploaded or in flight). */
const KILL_GATE = 40 * MiB;
/** The whole new content of the kill tests (less than OLD_SIZE, so the file's size tells old from new). */
const NEW_SIZE = 96 * MiB;
/** New content of the tests with the store up. */
const STREAMED_SIZE = 40 * MiB;
/** The tmpfs that holds the second mount's staging directory: far below the 1 GiB default floor (stagingMinFreeBytes). */
const TINY_STAGING = '8m';
const WAIT_MS = 120_000;

/** Python: open with O_TRUNC, dup2 the descriptor, close the original, then copy SOURCE through the duplicate. */
const PYTHON_DUP2_WRITER = `
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.dup2(fd, 10)
os.close(fd)
with open(sys.argv[2], 'rb') as source:
    while True:
        chunk = source.read(1 << 20)
        if not chunk:
            break
        view = memoryview(chunk)
        while view:
            view = view[os.write(10, view):]
os.close(10)
`;

/** A writer that copies the file `source` (a FIFO the test feeds) into `file`, the way a user would. */
interface Writer {
  name: string;
  command(source: string, file: string): [string, string[]];
}

const WRITERS: Writer[] = [
  { name: 'dd', command: (source, file) => ['dd', [`if=${source}`, `of=${file}`, 'bs=1M', 'iflag=fullblock', 'status=none']] },
  { name: 'bash', command: (source, file) => ['bash', ['-c', 'cat "$1" > "$2"', 'bash', source, file]] },
  { name: 'cp', command: (source, file) => ['cp', [source, file]] },
  { name: 'python-dup2', command: (source, file) => ['python3', ['-c', PYTHON_DUP2_WRITER, file, source]] },
];

let server: S3Server | undefined;
let client: S3Client | undefined;
let bucket: string;
let base: string;
let stagingDir: string;
let stagingMounted = false;
/** A mount with the default staging directory: the kill tests. */
let mount: GranaryMount | undefined;
/** A mount whose staging directory cannot take a single write: the streaming tests. */
let streamingMount: GranaryMount | undefined;
const inMount = (file: string) => path.join((mount as GranaryMount).mountpoint, file);
const inStreamingMount = (file: string) => path.join((streamingMount as GranaryMount).mountpoint, file);
const sdk = () => client as S3Client;

beforeAll(async () => {
  base = makeTemp('overwrite-safety');
  const dataDir = path.join(base, 's3-data');
  fs.mkdirSync(dataDir);
  server = await startS3Server({ dataDir });
  client = s3Client(server);
  bucket = await createBucket(server, 'overwrite');
  stagingDir = path.join(base, 'tiny-staging');
  fs.mkdirSync(stagingDir);
  await shOk(`mount -t tmpfs -o size=${TINY_STAGING} tmpfs ${shellQuote(stagingDir)}`);
  stagingMounted = true;
  for (const name of ['mnt', 'mnt-streaming']) fs.mkdirSync(path.join(base, name));
  mount = await mountGranary({ source: `s3://${bucket}/${PREFIX}`, mountpoint: path.join(base, 'mnt'), env: s3MountEnv(server) });
  // The staging directory defaults to $TMPDIR/granary-staging.
  streamingMount = await mountGranary({ source: `s3://${bucket}/${PREFIX}`, mountpoint: path.join(base, 'mnt-streaming'), env: { ...s3MountEnv(server), TMPDIR: stagingDir } });
});

afterAll(async () => {
  await stopAllMounts();
  if (stagingMounted) await run('umount', [stagingDir]);
  if (server && client) await deleteBucket(client, bucket).catch(() => undefined);
  client?.destroy();
  await server?.stop();
  removeTemp(base);
});

/** A writer process copying from a FIFO the test feeds. */
interface RunningWriter {
  /** Resolves once the writer exited, with its exit code and output. */
  finished: Promise<RunResult>;
  /** Resolves once every byte was fed (or the writer went away) and the FIFO was closed. */
  fed: Promise<void>;
}

let fifos = 0;

/**
 * Runs `writer` into `file`, feeding it `total` seeded bytes through a FIFO (node's stdin pipes are sockets, which
 * `cp` and `/dev/stdin` cannot open); feeding pauses after `pauseAt` bytes until `resume` resolves.
 */
function startWriter(writer: Writer, file: string, seed: string, total: number, pauseAt = total, resume: Promise<void> = Promise.resolve()): RunningWriter {
  const fifo = path.join(base, `source-${fifos++}.fifo`);
  execFileSync('mkfifo', [fifo]);
  const [command, args] = writer.command(fifo, file);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let gone = false;
  const finished = new Promise<RunResult>((resolve) => child.once('close', (code, signal) => {
    gone = true;
    resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
  }));
  const fed = (async () => {
    // A blocking open: it returns once the writer has opened the FIFO for reading. A writer that exits before that is
    // stood in for by a reader of our own, so the open cannot hang.
    let opened = false;
    const opening = fsp.open(fifo, 'w').then((handle) => {
      opened = true;
      return handle;
    });
    void finished.then(async () => {
      if (opened) return;
      const standIn = await fsp.open(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      await opening.catch(() => undefined);
      await standIn.close();
    });
    const sink = await opening;
    try {
      for (let offset = 0; offset < total && !gone; ) {
        if (offset === pauseAt) await resume;
        const length = Math.min(MiB, total - offset, offset < pauseAt ? pauseAt - offset : Infinity);
        const chunk = seededBytes(seed, offset, length);
        offset += length;
        // Blocks (in the threadpool) while the FIFO is full; EPIPE once the writer has gone (it failed: its exit code says).
        await sink.write(chunk);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error;
    } finally {
      await sink.close();
      fs.rmSync(fifo, { force: true });
    }
  })();
  return { finished, fed };
}

/** Polls until the file's size, as this mount shows it, is in [atLeast, below): the writer has written that much. */
async function waitForWrittenSize(file: string, atLeast: number, below: number, writer: { finished: Promise<RunResult> }): Promise<void> {
  let exited: RunResult | undefined;
  void writer.finished.then((result) => (exited = result));
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const size = fs.statSync(file).size;
    if (size >= atLeast && size < below) return;
    if (exited) throw new Error(`the writer exited (${exited.code}) before writing ${atLeast} bytes: ${exited.stderr.trim()}`);
    if (Date.now() > deadline) throw new Error(`the writer did not reach ${atLeast} bytes within ${WAIT_MS} ms (size ${size})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Polls `check` until it returns true, for up to WAIT_MS. */
async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const objectSize = async (key: string): Promise<number | undefined> =>
  sdk().send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then((head) => head.ContentLength ?? -1, () => undefined);

describe('an overwrite with the store killed mid-write leaves the old object intact', () => {
  for (const writer of WRITERS) {
    it(`${writer.name}`, withMountLog(() => mount, async () => {
      const file = `kill/${writer.name}.safetensors`;
      const key = PREFIX + file;
      const oldSha = await uploadSeeded(sdk(), bucket, key, `old/${writer.name}`, OLD_SIZE);
      expect(fs.statSync(inMount(file)).size).toBe(OLD_SIZE);

      let killed: () => void = () => undefined;
      const storeKilled = new Promise<void>((resolve) => (killed = resolve));
      const running = startWriter(writer, inMount(file), `new/${writer.name}`, NEW_SIZE, FED_BEFORE_KILL, storeKilled);
      try {
        // The writer has the file open, has written KILL_GATE bytes of the new content and waits for more input.
        await waitForWrittenSize(inMount(file), KILL_GATE, OLD_SIZE, running);
        await (server as S3Server).kill();
      } finally {
        killed();
      }
      const result = await running.finished;
      await running.fed;
      // The writer is told: a write or the close failed.
      expect(result.code).not.toBe(0);

      server = await restartS3Server(server as S3Server);
      expect(await objectSha256(sdk(), bucket, key)).toEqual({ sha256: oldSha, size: OLD_SIZE });
    }));
  }
});

describe('with the store up, every writer leaves exactly the new content, streamed (no staging)', () => {
  for (const writer of WRITERS) {
    it(`${writer.name}`, withMountLog(() => streamingMount, async () => {
      const file = `up/${writer.name}.safetensors`;
      const key = PREFIX + file;
      await uploadSeeded(sdk(), bucket, key, `old-up/${writer.name}`, 16 * MiB);
      const running = startWriter(writer, inStreamingMount(file), `new-up/${writer.name}`, STREAMED_SIZE);
      const result = await running.finished;
      await running.fed;
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      // close returned: the object is already the new content.
      expect(await objectSha256(sdk(), bucket, key)).toEqual({ sha256: seededSha256(`new-up/${writer.name}`, STREAMED_SIZE), size: STREAMED_SIZE });
    }));
  }

  it('head -c 20M /dev/urandom > new file: streams, and the object holds exactly the bytes written', withMountLog(() => streamingMount, async () => {
    const local = path.join(base, 'urandom-20m');
    const result = await run('bash', ['-c', 'set -o pipefail; head -c 20M /dev/urandom | tee "$1" > "$2"', 'bash', local, inStreamingMount('up/new-20m.bin')], { timeoutMs: WAIT_MS });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const expected = fs.readFileSync(local);
    expect(expected.length).toBe(20 * MiB);
    expect(await objectSha256(sdk(), bucket, `${PREFIX}up/new-20m.bin`)).toEqual({ sha256: sha256(expected), size: 20 * MiB });
  }));
});

describe('a truncation or a new file with nothing written is published when its last descriptor goes', () => {
  it(': > existing empties the object; this mount shows 0 bytes at once', withMountLog(() => mount, async () => {
    const file = 'release/emptied.log';
    await uploadSeeded(sdk(), bucket, PREFIX + file, 'release/old', 6 * MiB);
    expect(fs.statSync(inMount(file)).size).toBe(6 * MiB);
    await shOk(`: > ${shellQuote(inMount(file))}`);
    expect(fs.statSync(inMount(file)).size).toBe(0);
    await eventually('the object is emptied', async () => (await objectSize(PREFIX + file)) === 0);
    expect(fs.readFileSync(inMount(file)).length).toBe(0);
  }));

  it('touch creates an empty object; rm right after `: >` or touch leaves no object behind', withMountLog(() => mount, async () => {
    await shOk(`touch ${shellQuote(inMount('release/touched'))}`);
    expect(fs.readdirSync(inMount('release'))).toContain('touched');
    await eventually('the empty object exists', async () => (await objectSize(`${PREFIX}release/touched`)) === 0);
    for (let round = 0; round < 10; round++) {
      await shOk(`: > ${shellQuote(inMount('release/gone'))} && rm ${shellQuote(inMount('release/gone'))} && touch ${shellQuote(inMount('release/gone2'))} && rm ${shellQuote(inMount('release/gone2'))}`);
    }
    // A publish that raced an rm would bring its object back later: the mount finishes every pending publish before it exits.
    await (mount as GranaryMount).stop();
    const keys = await listKeys(sdk(), bucket, `${PREFIX}release/`);
    expect(keys.filter((key) => key.includes('gone'))).toEqual([]);
  }));
});
