// A store that stops answering (versitygw SIGSTOPped: its connections stay open, nothing comes back) must not hang
// the mount's callers. Every kind of call the kernel makes waits at most its deadline and then fails with EIO, a
// signal to the caller ends its wait with EINTR at once, a writer killed while blocked exits at once, and once the
// store runs again (SIGCONT) the same mount serves as before, without a remount.
//   1. fs-probe makes one call of each kind while the store is stopped, on a mount with short deadlines: each fails
//      with EIO within its deadline, and the mount log names the FUSE request that waited.
//   2. The same calls on a mount with long deadlines, each caller sent SIGUSR1 once it waits in the kernel for the
//      mount's answer: each fails with EINTR, long before any deadline.
//   3. dd writing a file when the store stops, SIGTERMed while it waits: it exits at once.
// The store is this file's own (stopping the shared one would stall the other suites).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { FUSE_WAIT, killProbes, startProbe, waitChannel, type Probe, type ProbeOperation, type ProbeResult } from '../support/fs-probe';
import { mountGranary, s3MountEnv, stopAllMounts, type GranaryMount } from '../support/mount';
import { createBucket, s3Client, startS3Server, type S3Server } from '../support/s3-server';
import { until } from '../support/until';
import { deleteBucket, getObject, makeTemp, MiB, putObjects, removeTemp, seededBytes, sha256 } from './helpers';

jest.setTimeout(300_000);

/** The short deadlines of the first mount (ms): long enough for a quick store, short enough for a test. */
const SHORT = { metadataMs: 2000, readMs: 3000, writeMs: 3000 };
/** The second mount's: far longer than any wait an interrupt test allows, so an EINTR cannot be a deadline. */
const LONG_MS = 120_000;
/**
 * How late past its deadline a call may return: the timer fires on a loaded event loop, and the probe's clock
 * includes the way into and out of the kernel. Generous for a saturated 2-core machine, tiny beside the minutes
 * the calls waited before deadlines existed.
 */
const SLACK_MS = 3000;
/** How long after the signal an interrupted call must have returned. */
const INTERRUPT_BOUND_MS = 5000;
/** The mount's entry and attribute cache time (attrTimeoutMs, default 1 s), and a margin: waited so caches have expired. */
const CACHES_EXPIRED_MS = 1500;
const READ_SIZE = 8 * MiB;

/** What each probe's call must wait in: the FUSE request the mount log names, and the deadline that bounds it. */
const CALLS: Record<ProbeOperation, { request: RegExp; deadline: keyof typeof SHORT }> = {
  lookup: { request: /^LOOKUP$/, deadline: 'metadataMs' },
  // A stat of a name whose cached entry expired: the kernel revalidates it, and on a failure looks it up afresh at
  // once; the caller still waits one deadline, not two.
  revalidate: { request: /^LOOKUP$/, deadline: 'metadataMs' },
  getattr: { request: /^GETATTR$/, deadline: 'metadataMs' },
  readdir: { request: /^READDIR(PLUS)?$/, deadline: 'metadataMs' },
  open: { request: /^OPEN$/, deadline: 'metadataMs' },
  read: { request: /^READ$/, deadline: 'readMs' },
  write: { request: /^WRITE$/, deadline: 'writeMs' },
  fsync: { request: /^FSYNC$/, deadline: 'writeMs' },
  close: { request: /^FLUSH$/, deadline: 'writeMs' },
};
const OPERATIONS = Object.keys(CALLS) as ProbeOperation[];

let server: S3Server | undefined;
let client: S3Client | undefined;
let bucket: string;
let base: string;
let stopped = false;
const sdk = () => client as S3Client;

/** The objects each round's calls work on (`round` keeps the rounds' names apart). */
function seed(round: string): Array<readonly [string, Buffer]> {
  return [
    [`${round}/getattr.bin`, seededBytes(`${round}-getattr`, 0, 4096)],
    [`${round}/revalidate.bin`, seededBytes(`${round}-revalidate`, 0, 4096)],
    [`${round}/read.bin`, seededBytes(`${round}-read`, 0, READ_SIZE)],
    [`${round}/write.bin`, Buffer.from('the old content, which must survive an abandoned write')],
    [`${round}/dir/a.txt`, Buffer.from('a')],
  ];
}

/**
 * The path each probe's call uses under `mountpoint`, which mounts one round's prefix: every file sits in the mount's
 * root, whose entry never expires, so a call by path waits in its own request, not in the lookup of a directory.
 */
function target(mountpoint: string, operation: ProbeOperation): string {
  const inRound = (name: string) => path.join(mountpoint, name);
  switch (operation) {
    case 'lookup':
      return inRound('never-looked-up');
    case 'getattr':
      return inRound('getattr.bin');
    case 'readdir':
      return inRound('dir');
    case 'read':
      return inRound('read.bin');
    case 'write':
      return inRound('write.bin');
    default:
      return inRound(`${operation}.bin`);
  }
}

function stopStore(): void {
  process.kill((server as S3Server).pid, 'SIGSTOP');
  stopped = true;
}

function continueStore(): void {
  if (!stopped || !server) return;
  process.kill(server.pid, 'SIGCONT');
  stopped = false;
}

/** Starts one probe per operation on `round` and waits until every one has prepared its call. */
async function prepare(mount: GranaryMount): Promise<Map<ProbeOperation, Probe>> {
  const probes = new Map<ProbeOperation, Probe>();
  for (const operation of OPERATIONS) probes.set(operation, await startProbe(operation, target(mount.mountpoint, operation)));
  // Entries and attributes cached while preparing must have expired, or the calls would not ask the mount at all.
  await new Promise((resolve) => setTimeout(resolve, CACHES_EXPIRED_MS));
  return probes;
}

/** How many write(2) calls process `pid` has returned from (/proc/PID/io syscw). */
function writeCalls(pid: number): number {
  return Number(/syscw: (\d+)/.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
}

/** After the store runs again: the same mount (of `round`'s prefix) lists, reads and writes as before. */
async function expectServing(mount: GranaryMount, round: string): Promise<void> {
  const listing = fs.readdirSync(mount.mountpoint).sort();
  expect(listing).toEqual(expect.arrayContaining(['dir', 'getattr.bin', 'read.bin', 'write.bin']));
  expect(sha256(fs.readFileSync(path.join(mount.mountpoint, 'read.bin')))).toBe(sha256(seededBytes(`${round}-read`, 0, READ_SIZE)));
  const written = path.join(mount.mountpoint, 'after.txt');
  fs.writeFileSync(written, 'written after the store came back');
  expect((await getObject(sdk(), bucket, `${round}/after.txt`)).toString()).toBe('written after the store came back');
}

/** A file a call failed on holds, in the bucket, nothing or its whole content: never a part. */
async function expectAbsentOrWhole(key: string, whole: Buffer): Promise<void> {
  const body = await getObject(sdk(), bucket, key).catch(() => undefined);
  if (body !== undefined) expect(sha256(body)).toBe(sha256(whole));
}

beforeAll(async () => {
  server = await startS3Server();
  client = s3Client(server);
  bucket = await createBucket(server, 'stopped');
  await putObjects(sdk(), bucket, [...seed('short'), ...seed('interrupt'), ...seed('dd')]);
  base = makeTemp('granary-stopped-');
});

afterAll(async () => {
  continueStore();
  await stopAllMounts();
  if (client) await deleteBucket(sdk(), bucket).catch(() => undefined);
  client?.destroy();
  await server?.stop();
  removeTemp(base);
});

afterEach(() => {
  continueStore();
  killProbes();
});

test(`every call fails with EIO within its deadline (metadata ${SHORT.metadataMs} ms, read ${SHORT.readMs} ms, write ${SHORT.writeMs} ms without progress), and the mount serves again after SIGCONT`, async () => {
  const mountpoint = path.join(base, 'short');
  fs.mkdirSync(mountpoint);
  const args = ['--metadata-deadline', String(SHORT.metadataMs), '--read-deadline', String(SHORT.readMs), '--write-deadline', String(SHORT.writeMs)];
  const mount = await mountGranary({ source: `s3://${bucket}/short`, mountpoint, env: s3MountEnv(server as S3Server), args });
  try {
    const probes = await prepare(mount);
    stopStore();
    await Promise.all([...probes.values()].map((probe) => probe.go()));
    const results = new Map<ProbeOperation, ProbeResult>();
    for (const [operation, probe] of probes) results.set(operation, await probe.result());
    continueStore();
    for (const probe of probes.values()) await probe.finish();

    const expiries = mount.log().split('\n').filter((line) => line.includes('exceeded its deadline')).map((line) => JSON.parse(line) as { op: string; name?: string });
    const timedOut = expiries.map((line) => line.op);
    // The revalidation's LOOKUP waited its deadline; the kernel's fresh LOOKUP right after was answered at once.
    expect(expiries.filter((line) => line.op === 'LOOKUP' && line.name === 'revalidate.bin')).toHaveLength(1);
    for (const operation of OPERATIONS) {
      const { request, deadline } = CALLS[operation];
      const result = results.get(operation) as ProbeResult;
      const bound = SHORT[deadline];
      expect({ operation, errno: result.errno }).toEqual({ operation, errno: 'EIO' });
      expect({ operation, withinDeadline: result.ms >= bound - 50 && result.ms <= bound + SLACK_MS, ms: result.ms }).toEqual({ operation, withinDeadline: true, ms: result.ms });
      expect({ operation, loggedRequests: timedOut.some((op) => request.test(op)) }).toEqual({ operation, loggedRequests: true });
    }
    // The write the caller was told failed never lands: the object keeps its old content.
    expect((await getObject(sdk(), bucket, 'short/write.bin')).toString()).toBe('the old content, which must survive an abandoned write');
    const probeBytes = Buffer.alloc(MiB, 'g');
    await expectAbsentOrWhole('short/fsync.bin', probeBytes);
    await expectAbsentOrWhole('short/close.bin', probeBytes);
    await expectServing(mount, 'short');
  } catch (error) {
    (error as Error).message += `\n--- mount log ---\n${mount.logTail(60)}`;
    throw error;
  }
});

test(`a signal to a caller waiting on the stopped store ends its call with EINTR within ${INTERRUPT_BOUND_MS} ms, whatever the call`, async () => {
  const mountpoint = path.join(base, 'interrupt');
  fs.mkdirSync(mountpoint);
  const args = ['--metadata-deadline', String(LONG_MS), '--read-deadline', String(LONG_MS), '--write-deadline', String(LONG_MS)];
  const mount = await mountGranary({ source: `s3://${bucket}/interrupt`, mountpoint, env: s3MountEnv(server as S3Server), args });
  try {
    const probes = await prepare(mount);
    stopStore();
    const outcomes = new Map<ProbeOperation, { result: ProbeResult; signalledAt: number; answeredAt: number }>();
    await Promise.all(
      [...probes].map(async ([operation, probe]) => {
        await probe.go();
        let settled: ProbeResult | undefined;
        void probe.result().then((result) => (settled = result));
        let signalledAt = 0;
        // A write that had already taken its bytes returns them when interrupted, and the next one waits: signal each
        // wait the caller enters until a call returns an error.
        while (!settled) {
          await until(() => settled !== undefined || waitChannel(probe.pid) === FUSE_WAIT, `fs-probe ${operation} waits for the mount`, 30_000, 10);
          if (settled) break;
          const writes = writeCalls(probe.pid);
          signalledAt = Date.now();
          process.kill(probe.pid, 'SIGUSR1');
          // Its call returned: the probe reported, or (the write loop) went on to its next write at once.
          await until(() => settled !== undefined || writeCalls(probe.pid) > writes, `fs-probe ${operation} returns from its call after SIGUSR1`, LONG_MS, 10);
        }
        outcomes.set(operation, { result: await probe.result(), signalledAt, answeredAt: Date.now() });
      }),
    );
    continueStore();
    for (const probe of probes.values()) await probe.finish();
    for (const operation of OPERATIONS) {
      const { result, signalledAt, answeredAt } = outcomes.get(operation) as { result: ProbeResult; signalledAt: number; answeredAt: number };
      expect({ operation, errno: result.errno }).toEqual({ operation, errno: 'EINTR' });
      expect({ operation, answeredWithin: answeredAt - signalledAt <= INTERRUPT_BOUND_MS }).toEqual({ operation, answeredWithin: true });
    }
    expect(mount.log()).not.toContain('exceeded its deadline');
    await expectServing(mount, 'interrupt');
  } catch (error) {
    (error as Error).message += `\n--- mount log ---\n${mount.logTail(60)}`;
    throw error;
  }
});

test('dd writing when the store stops exits at once on SIGTERM, and the mount serves again after SIGCONT', async () => {
  const mountpoint = path.join(base, 'dd');
  fs.mkdirSync(mountpoint);
  const args = ['--metadata-deadline', String(LONG_MS), '--read-deadline', String(LONG_MS), '--write-deadline', String(LONG_MS)];
  const mount = await mountGranary({ source: `s3://${bucket}/dd`, mountpoint, env: s3MountEnv(server as S3Server), args });
  try {
    const dd = spawn('dd', ['if=/dev/zero', `of=${path.join(mountpoint, 'big.bin')}`, 'bs=1M', 'count=100000'], { stdio: 'ignore' });
    const exited = new Promise<number>((resolve) => dd.once('exit', () => resolve(Date.now())));
    // dd is streaming parts to the store when it stops: its writes soon wait for an upload slot.
    await until(() => {
      const io = fs.readFileSync(`/proc/${dd.pid}/io`, 'utf8');
      return Number(/wchar: (\d+)/.exec(io)?.[1] ?? 0) >= 64 * MiB;
    }, 'dd has written 64 MiB', 60_000);
    stopStore();
    await until(() => waitChannel(dd.pid as number) === FUSE_WAIT, 'dd waits for the mount', 60_000, 10);
    const signalledAt = Date.now();
    dd.kill('SIGTERM');
    const exitedAt = await exited;
    expect(exitedAt - signalledAt).toBeLessThanOrEqual(INTERRUPT_BOUND_MS);
    continueStore();
    await expectServing(mount, 'dd');
  } catch (error) {
    (error as Error).message += `\n--- mount log ---\n${mount.logTail(60)}`;
    throw error;
  }
});
