// Workload: a training job writing logs and metrics (TensorBoard event files, CSV, JSON lines) on a
// read-write volume. Through a real granary mount: appends to existing objects (`>>`, and a writer
// that fsyncs after each record), overwrite with O_TRUNC (`>`), and `truncate -s` to shrink and grow;
// every result is checked both as the raw object (SDK) and through the mount.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { mountGranary, s3MountEnv, stopAllMounts, withMountLog, type GranaryMount } from '../support/mount';
import { createBucket, s3Client, testS3 } from '../support/s3-server';
import { deleteBucket, getObject, makeTemp, MiB, putObjects, removeTemp, seededBytes, sha256, shellQuote, shOk, spawnStepped } from './helpers';

jest.setTimeout(180_000);

const PREFIX = 'runs/exp-42/';

let client: S3Client;
let bucket: string;
let base: string | undefined;
let mount: GranaryMount | undefined;
const inMount = (file: string) => path.join((mount as GranaryMount).mountpoint, file);

/** Expects the object (raw SDK) and the file (through the mount) to hold exactly `expected`. */
async function expectContent(file: string, expected: Buffer): Promise<void> {
  const object = await getObject(client, bucket, PREFIX + file);
  expect(object.length).toBe(expected.length);
  expect(sha256(object)).toBe(sha256(expected));
  expect(fs.statSync(inMount(file)).size).toBe(expected.length);
  expect(sha256(fs.readFileSync(inMount(file)))).toBe(sha256(expected));
}

beforeAll(async () => {
  client = s3Client(testS3());
  bucket = await createBucket(testS3(), 'logs-and-metrics');
  base = makeTemp('logs-and-metrics');
  fs.mkdirSync(path.join(base, 'mnt'));
  mount = await mountGranary({ source: `s3://${bucket}/${PREFIX}`, mountpoint: path.join(base, 'mnt'), env: s3MountEnv(testS3()) });
});

afterAll(async () => {
  await stopAllMounts();
  removeTemp(base);
  if (bucket) await deleteBucket(client, bucket);
  client?.destroy();
});

it('appends with >> to an object put by the SDK: the object is the concatenation after every close', withMountLog(() => mount, async () => {
  const file = 'tb/events.out.tfevents.1700000000.worker-0';
  let expected = Buffer.from('brain.Event:2\n');
  await putObjects(client, bucket, [[PREFIX + file, expected]]);
  for (let step = 1; step <= 5; step++) {
    const record = `step=${step} loss=${(1 / step).toFixed(4)}\n`;
    await shOk(`printf '%s' ${shellQuote(record)} >> ${shellQuote(inMount(file))}`);
    expected = Buffer.concat([expected, Buffer.from(record)]);
    await expectContent(file, expected);
  }
}));

it('>> to a file that does not exist yet creates it, and later appends extend it', withMountLog(() => mount, async () => {
  const file = 'tb/events.out.tfevents.1700000000.worker-1';
  await shOk(`printf 'brain.Event:2\\n' >> ${shellQuote(inMount(file))}`);
  await expectContent(file, Buffer.from('brain.Event:2\n'));
  await shOk(`printf 'step=1\\n' >> ${shellQuote(inMount(file))}`);
  await expectContent(file, Buffer.from('brain.Event:2\nstep=1\n'));
}));

it('appends to a multi-MiB object: the old bytes stay and the new ones follow', withMountLog(() => mount, async () => {
  const file = 'metrics/train.jsonl';
  const existing = seededBytes('logs/jsonl', 0, 9 * MiB + 77);
  await putObjects(client, bucket, [[PREFIX + file, existing]]);
  const tail = Buffer.from('{"step":1000,"loss":0.25}\n');
  await shOk(`printf '%s' ${shellQuote(tail.toString())} >> ${shellQuote(inMount(file))}`);
  await expectContent(file, Buffer.concat([existing, tail]));
}));

it('a writer that keeps the file open and fsyncs after each record: each fsync makes the object whole so far', withMountLog(() => mount, async () => {
  const file = 'metrics/scalars.csv';
  const header = Buffer.from('step,loss,lr\n');
  await putObjects(client, bucket, [[PREFIX + file, header]]);
  const rows = [1, 2, 3].map((step) => `${step},${(2 / step).toFixed(3)},0.001\n`);
  const writer = spawnStepped('python3', [
    '-c',
    `
import os, sys
with open(sys.argv[1], 'a') as f:
    for row in sys.argv[2:]:
        f.write(row)
        f.flush()
        os.fsync(f.fileno())
        print('synced', flush=True)
        sys.stdin.readline()
`,
    inMount(file),
    ...rows,
  ]);
  let expected = header;
  for (const row of rows) {
    expect(await writer.nextLine()).toBe('synced');
    expected = Buffer.concat([expected, Buffer.from(row)]);
    expect((await getObject(client, bucket, PREFIX + file)).toString()).toBe(expected.toString());
    writer.proceed();
  }
  const result = await writer.finished;
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  await expectContent(file, expected);
}));

it('overwrites with > (O_TRUNC): only the new content is left', withMountLog(() => mount, async () => {
  const file = 'logs/stdout.log';
  await putObjects(client, bucket, [[PREFIX + file, seededBytes('logs/old-stdout', 0, 6 * MiB)]]);
  await shOk(`printf 'restarted at step 1000\\n' > ${shellQuote(inMount(file))}`);
  await expectContent(file, Buffer.from('restarted at step 1000\n'));
  // Again, on a file that granary itself wrote.
  await shOk(`printf 'restarted at step 2000\\n' > ${shellQuote(inMount(file))}`);
  await expectContent(file, Buffer.from('restarted at step 2000\n'));
}));

it('truncate -s shrinks, grows with zeros, and empties a file', withMountLog(() => mount, async () => {
  const file = 'logs/trainer.log';
  const original = seededBytes('logs/trainer', 0, 5 * MiB + 3);
  await putObjects(client, bucket, [[PREFIX + file, original]]);

  await shOk(`truncate -s 1000 ${shellQuote(inMount(file))}`);
  await expectContent(file, original.subarray(0, 1000));

  await shOk(`truncate -s ${2 * MiB} ${shellQuote(inMount(file))}`);
  await expectContent(file, Buffer.concat([original.subarray(0, 1000), Buffer.alloc(2 * MiB - 1000)]));

  await shOk(`truncate -s 0 ${shellQuote(inMount(file))}`);
  await expectContent(file, Buffer.alloc(0));
}));
