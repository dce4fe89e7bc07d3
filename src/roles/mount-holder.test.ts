import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../log/logger';
import { holdMount, TAKEOVER_SINCE_ENV } from './mount-holder';

/**
 * A stand-in serving process (node -e): appends its arguments and takeover time to RUN_LOG, then does what the next
 * step of PLAN says (one per start): `exit N`, `crash` (SIGKILL itself), `live-crash` (says ready, as a server whose
 * mount is live, then SIGKILLs itself), `ready` (says ready, then waits: exits 0 on SIGTERM).
 */
const SERVER = `
const fs = require('node:fs');
const [runLog, plan] = [process.env.RUN_LOG, process.env.PLAN];
const runs = fs.existsSync(runLog) ? fs.readFileSync(runLog, 'utf8').split('\\n').filter(Boolean).length : 0;
fs.appendFileSync(runLog, JSON.stringify({ args: process.argv.slice(1), since: process.env.${TAKEOVER_SINCE_ENV} ?? null, ready: process.env.GRANARY_READY_FD ?? null }) + '\\n');
const step = (plan.split(',')[runs] ?? 'exit 0').split(' ');
if (step[0] === 'exit') process.exit(Number(step[1]));
if (step[0] === 'crash') process.kill(process.pid, 'SIGKILL');
// (Only the first process gets a ready fd: a successor is live by taking over.)
if ((step[0] === 'ready' || step[0] === 'live-crash') && process.env.GRANARY_READY_FD) fs.writeSync(Number(process.env.GRANARY_READY_FD), 'ready\\n');
if (step[0] === 'live-crash') setTimeout(() => process.kill(process.pid, 'SIGKILL'), 50);
process.on('SIGTERM', () => process.exit(0));
setInterval(() => undefined, 1000);
`;

describe('holdMount', () => {
  let dir: string;
  let runLog: string;
  let signals: EventEmitter;
  let detached: string[];
  let mounted: boolean;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-holder-'));
    runLog = path.join(dir, 'runs');
    signals = new EventEmitter();
    detached = [];
    mounted = true;
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const runs = (): Array<{ args: string[]; since: string | null; ready: string | null }> =>
    fs.readFileSync(runLog, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { args: string[]; since: string | null; ready: string | null });

  function hold(plan: string, readyFd?: number, healthyAfterMs?: number): Promise<number> {
    process.env.RUN_LOG = runLog;
    process.env.PLAN = plan;
    return holdMount({
      command: process.execPath,
      args: ['-e', SERVER, '--', 'mount', 's3://b/p', '/mnt/x'],
      mountpoint: '/mnt/x',
      logger: silentLogger(),
      openDevice: () => fs.openSync('/dev/null', 'r+'),
      isMounted: () => mounted,
      signals,
      detach: (mountpoint) => void detached.push(mountpoint),
      ...(readyFd !== undefined && { readyFd }),
      ...(healthyAfterMs !== undefined && { healthyAfterMs }),
    });
  }

  afterAll(() => {
    delete process.env.RUN_LOG;
    delete process.env.PLAN;
  });

  it.each([
    ['EACCES', 'granary mount must run as root (FUSE mounts need CAP_SYS_ADMIN)'],
    ['ENOENT', '/dev/fuse does not exist: load the fuse module (modprobe fuse)'],
  ])('says what to do when /dev/fuse cannot be opened (%s), starting nothing', async (code, message) => {
    const held = holdMount({
      command: process.execPath, args: ['-e', SERVER], mountpoint: '/mnt/x', logger: silentLogger(), signals,
      openDevice: () => {
        throw Object.assign(new Error(`${code}: open '/dev/fuse'`), { code });
      },
    });
    await expect(held).rejects.toThrow(message);
    expect(fs.existsSync(runLog)).toBe(false);
  });

  it('runs one serving process on the device (fd 3) and ends with it when it ends on its own', async () => {
    expect(await hold('exit 0')).toBe(0);
    expect(runs()).toEqual([{ args: ['mount', 's3://b/p', '/mnt/x', '--fuse-fd', '3'], since: null, ready: '4' }]);
    expect(detached).toEqual([]);
  });

  it('starts a successor with --takeover and the time of death when the serving process dies while mounted', async () => {
    const before = Date.now();
    expect(await hold('live-crash,exit 0')).toBe(0);
    const [first, second] = runs();
    expect(first?.args).not.toContain('--takeover');
    expect(second?.args).toEqual(['mount', 's3://b/p', '/mnt/x', '--fuse-fd', '3', '--takeover']);
    expect(Number(second?.since)).toBeGreaterThanOrEqual(before);
    expect(detached).toEqual([]);
  });

  it('does not restart a server that failed before its mount was live, even with another mount there: its exit code is the mount\'s', async () => {
    // Another mount already stands at the mountpoint (the server refused it): not a session of this holder's to take over.
    // (PLAN's steps count starts across both holds: the first runs `exit 3`, the second `crash`.)
    expect(await hold('exit 3,crash')).toBe(3);
    expect(await hold('exit 3,crash')).toBe(1);
    expect(runs()).toHaveLength(2);
  });

  it('does not restart a server whose mount was unmounted under it', async () => {
    mounted = false;
    expect(await hold('live-crash')).toBe(1);
    expect(runs()).toHaveLength(1);
  });

  it('survives any number of deaths of serving processes that had run a while (here: 50 ms counts as a while)', async () => {
    expect(await hold('live-crash,live-crash,live-crash,live-crash,live-crash,live-crash,live-crash,exit 0', undefined, 10)).toBe(0);
    expect(runs()).toHaveLength(8);
    expect(detached).toEqual([]);
  });

  it('gives the mount up (detached) when the serving process dies more than 5 times in a row right after its start', async () => {
    expect(await hold('live-crash,crash,crash,crash,crash,crash,exit 0')).toBe(1);
    expect(runs()).toHaveLength(6);
    expect(detached).toEqual(['/mnt/x']);
  }, 30_000);

  it('relays the first process\'s readiness to its own ready fd, and forwards SIGTERM', async () => {
    const [readEnd, writeEnd] = pipe(dir);
    const held = hold('ready', writeEnd);
    expect(await readWhenWritten(readEnd)).toBe('ready\n');
    fs.closeSync(readEnd);
    expect(runs()[0]?.ready).toBe('4');
    signals.emit('SIGTERM');
    expect(await held).toBe(0);
    // The stand-in exits on SIGTERM without unmounting, as a server killed while it was starting would: the holder detaches.
    expect(detached).toEqual(['/mnt/x']);
  });
});

/** A named pipe in `dir`: [read fd, write fd]. */
function pipe(dir: string): [number, number] {
  const fifo = path.join(dir, 'ready.fifo');
  execFileSync('mkfifo', [fifo]);
  const readEnd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  return [readEnd, fs.openSync(fifo, fs.constants.O_WRONLY)];
}

/** What a non-blocking read end gets, once something is written to it. */
async function readWhenWritten(fd: number): Promise<string> {
  const buffer = Buffer.alloc(64);
  for (;;) {
    try {
      const read = fs.readSync(fd, buffer);
      if (read > 0) return buffer.subarray(0, read).toString();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
