// Real FUSE mounts through the built CLI (dist/src/cli/index.js), against a local folder and the
// shared real S3 server. The test does not build: running tsc here would take long and, in a
// checkout others edit at the same time, fail on their work in progress; `npm test` builds first,
// and a missing or stale build fails loudly with the command to run.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createBucket, s3Client, testS3 } from '../../e2e/support/s3-server';
import { until } from '../../e2e/support/until';
import { servingProcess } from '../../e2e/support/mount-holder';
import { findMount as findMountIn, readMountInfo } from '../system/mountinfo';

const findMount = (mountpoint: string) => findMountIn(readMountInfo(), mountpoint);

jest.setTimeout(180_000);

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'index.js');
/** The source folders whose build the mount process runs. */
const BUILT_FOLDERS = ['src/cli', 'src/config', 'src/fs', 'src/log', 'src/objectstore'];
const READY_TIMEOUT_MS = 30_000;

function assertBuilt(): void {
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
        const built = path.join(ROOT, 'dist', path.relative(ROOT, file)).replace(/\.ts$/, '.js');
        if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < fs.statSync(file).mtimeMs) stale.push(path.relative(ROOT, file));
      }
    }
  };
  BUILT_FOLDERS.forEach((folder) => walk(path.join(ROOT, folder)));
  if (!fs.existsSync(CLI) || stale.length > 0) {
    throw new Error(`the built CLI is missing or older than ${stale.slice(0, 3).join(', ') || 'src'}: run npm run build first (npm test does)`);
  }
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { maxBuffer: 256 * 1024 * 1024, env: options.env ?? process.env }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** A running `granary mount` child. */
interface MountProcess {
  child: ChildProcess;
  mountpoint: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();
const mountpoints = new Set<string>();

/** Spawns the CLI; resolves once it wrote `ready` on the ready fd, rejects if it exits first. */
async function startMount(source: string, mountpoint: string, options: { args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<MountProcess> {
  const process_ = spawnMount(source, mountpoint, options);
  const ready = new Promise<void>((resolve, reject) => {
    let text = '';
    process_.child.stdio[3]?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text === 'ready\n') resolve();
    });
    void process_.exited.then((exit) => reject(new Error(`granary mount exited (${exit.code ?? exit.signal}) before ready: ${process_.stderr()}`)));
    setTimeout(() => reject(new Error(`granary mount not ready within ${READY_TIMEOUT_MS} ms: ${process_.stderr()}`)), READY_TIMEOUT_MS).unref();
  });
  await ready;
  return process_;
}

function spawnMount(source: string, mountpoint: string, options: { args?: string[]; env?: NodeJS.ProcessEnv } = {}): MountProcess {
  const child = spawn(process.execPath, [CLI, 'mount', source, mountpoint, ...(options.args ?? [])], {
    env: { PATH: process.env.PATH, ...options.env, GRANARY_READY_FD: '3' },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  mountpoints.add(mountpoint);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, mountpoint, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Kills what a test left running and unmounts what it left mounted, even after a failure. */
async function cleanUp(): Promise<void> {
  for (const child of children) child.kill('SIGKILL');
  for (const mountpoint of mountpoints) {
    while (findMount(mountpoint)) {
      const { code } = await run('umount', ['-l', mountpoint]);
      if (code !== 0) break;
    }
  }
  mountpoints.clear();
}

function makeTree(base: string, files: Record<string, Buffer>): void {
  for (const [name, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(base, name)), { recursive: true });
    fs.writeFileSync(path.join(base, name), data);
  }
}

/** Files of sizes around the boundaries that matter (empty, one page, one 128 KiB readahead, several MiB). */
function sampleFiles(): Record<string, Buffer> {
  return {
    'readme.txt': Buffer.from('hello granary\n'),
    'empty.bin': Buffer.alloc(0),
    'data/page.bin': randomBytes(4095),
    'data/readahead.bin': randomBytes(128 * 1024 + 1),
    'data/nested/deeper/large.bin': randomBytes(3 * 1024 * 1024 + 7),
    'data/nested/sibling.txt': Buffer.from('sibling\n'),
  };
}

const MANY = Array.from({ length: 1500 }, (_, i) => `entry-${String(i).padStart(4, '0')}.txt`);

/** A mounted volume and the files it should show. */
interface MountedFixture {
  mount: MountProcess;
  files: Record<string, Buffer>;
}

/** The checks both sources must pass: listings, byte-exact reads, a complete 1,500-entry listing, EROFS, another uid. */
function itServesTheVolume(fixture: () => MountedFixture): void {
  const mnt = () => fixture().mount.mountpoint;

  it('is listed in mountinfo as fuse.granary', () => {
    expect(findMount(mnt())?.fsType).toBe('fuse.granary');
  });

  it("keeps the kernel readahead it raised to 1 MiB (raised after FUSE_INIT, whose 128 KiB limit would otherwise apply)", () => {
    const device = findMount(mnt())?.device ?? '';
    expect(fs.readFileSync(`/sys/class/bdi/${device}/read_ahead_kb`, 'utf8').trim()).toBe('1024');
  });

  it('lists the root and nested directories', async () => {
    expect(fs.readdirSync(mnt()).filter((name) => name !== 'big').sort()).toEqual(['data', 'empty.bin', 'many', 'readme.txt']);
    expect(fs.readdirSync(path.join(mnt(), 'data')).sort()).toEqual(['nested', 'page.bin', 'readahead.bin']);
    expect(fs.readdirSync(path.join(mnt(), 'data/nested/deeper'))).toEqual(['large.bin']);
    expect(fs.statSync(path.join(mnt(), 'data/nested')).isDirectory()).toBe(true);
    const ls = await run('ls', ['-la', path.join(mnt(), 'data')]);
    expect(ls.code).toBe(0);
    // Writable by any pod uid by default (fileMode 0666, dirMode 0777), owned by root.
    expect(ls.stdout).toMatch(/-rw-rw-rw- +1 root root +131073 .* readahead\.bin/);
    expect(ls.stdout).toMatch(/drwxrwxrwx +1 root root .* nested/);
  });

  it('reads every file byte-exact', async () => {
    for (const [file, data] of Object.entries(fixture().files)) {
      expect(fs.statSync(path.join(mnt(), file)).size).toBe(data.length);
      const viaCat = await run('sh', ['-c', `cat '${path.join(mnt(), file)}' | sha256sum`]);
      expect(viaCat.stdout.split(' ')[0]).toBe(sha256(data));
      expect(sha256(fs.readFileSync(path.join(mnt(), file)))).toBe(sha256(data));
    }
  });

  it('lists a 1,500-entry directory completely', async () => {
    expect(fs.readdirSync(path.join(mnt(), 'many')).sort()).toEqual(MANY);
    const ls = await run('ls', [path.join(mnt(), 'many')]);
    expect(ls.stdout.trim().split('\n')).toEqual(MANY);
  });

  it('refuses writes with EROFS', () => {
    const expectErofs = (action: () => void) => expect(action).toThrow(expect.objectContaining({ code: 'EROFS' }));
    expectErofs(() => fs.writeFileSync(path.join(mnt(), 'new.txt'), 'x'));
    expectErofs(() => fs.appendFileSync(path.join(mnt(), 'readme.txt'), 'x'));
    expectErofs(() => fs.mkdirSync(path.join(mnt(), 'newdir')));
    expectErofs(() => fs.unlinkSync(path.join(mnt(), 'readme.txt')));
    expectErofs(() => fs.renameSync(path.join(mnt(), 'readme.txt'), path.join(mnt(), 'moved.txt')));
    expect(fs.readFileSync(path.join(mnt(), 'readme.txt'), 'utf8')).toBe('hello granary\n');
  });

  it('is readable by another uid (nobody)', async () => {
    const large = path.join(mnt(), 'data/nested/deeper/large.bin');
    const result = await run('runuser', ['-u', 'nobody', '--', 'sh', '-c', `id -u && ls '${mnt()}/data' && cat '${mnt()}/readme.txt' && sha256sum '${large}'`]);
    expect(result.stderr).toBe('');
    const [uid, ...rest] = result.stdout.trim().split('\n');
    expect(uid).not.toBe('0');
    expect(rest).toEqual(['nested', 'page.bin', 'readahead.bin', 'hello granary', `${sha256(fixture().files['data/nested/deeper/large.bin'] as Buffer)}  ${large}`]);
  });

  it('prints nothing on stdout', () => {
    expect(fixture().mount.stdout()).toBe('');
  });
}

/** A temporary folder others may traverse (mkdtemp makes 0700; nobody must reach the mountpoint). */
function tempBase(stem: string): string {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), stem));
  fs.chmodSync(base, 0o755);
  bases.push(base);
  return base;
}

async function stopMount(mount: MountProcess | undefined): Promise<void> {
  if (mount && mount.child.exitCode === null && mount.child.signalCode === null) {
    mount.child.kill('SIGTERM');
    await mount.exited;
  }
  await cleanUp();
}

const bases: string[] = [];

beforeAll(() => assertBuilt());

afterAll(async () => {
  await cleanUp();
  for (const base of bases) fs.rmSync(base, { recursive: true, force: true });
});

describe('granary mount of a local folder', () => {
  let fixture: MountedFixture;

  beforeAll(async () => {
    const base = tempBase('granary-mount-local-');
    const files = sampleFiles();
    makeTree(path.join(base, 'source'), files);
    for (const name of MANY) makeTree(path.join(base, 'source'), { [`many/${name}`]: Buffer.from(name) });
    fs.mkdirSync(path.join(base, 'mnt'));
    // Read-only like the S3 fixture, so both pass the same checks; writes are namespace.integration.test.ts's.
    fixture = { mount: await startMount(path.join(base, 'source'), path.join(base, 'mnt'), { args: ['--read-only'] }), files };
  });

  afterAll(() => stopMount(fixture?.mount));

  itServesTheVolume(() => fixture);
});

describe('granary mount of s3://bucket/prefix on the real S3 server', () => {
  const BIG = 64 * 1024 * 1024;
  let fixture: MountedFixture;
  let big: Buffer;
  const awsEnv = () => {
    const server = testS3();
    return { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, AWS_ENDPOINT_URL: server.endpoint, AWS_REGION: server.region };
  };

  async function upload(client: S3Client, bucket: string, entries: Array<[string, Buffer]>, concurrency = 32): Promise<void> {
    const queue = [...entries];
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: next[0], Body: next[1] }));
        }
      }),
    );
  }

  beforeAll(async () => {
    const base = tempBase('granary-mount-s3-');
    const bucket = await createBucket(testS3(), 'mount');
    const client = s3Client(testS3());
    const files = sampleFiles();
    big = randomBytes(BIG);
    try {
      await upload(client, bucket, [
        ...Object.entries(files).map(([name, data]): [string, Buffer] => [`volume/${name}`, data]),
        ...MANY.map((name): [string, Buffer] => [`volume/many/${name}`, Buffer.from(name)]),
        ['volume/big/model.bin', big],
        ['outside/not-in-volume.txt', Buffer.from('x')],
      ]);
    } finally {
      client.destroy();
    }
    fs.mkdirSync(path.join(base, 'mnt'));
    fixture = { mount: await startMount(`s3://${bucket}/volume`, path.join(base, 'mnt'), { env: awsEnv(), args: ['--read-only'] }), files };
  });

  afterAll(() => stopMount(fixture?.mount));

  itServesTheVolume(() => fixture);

  const bigFile = () => path.join(fixture.mount.mountpoint, 'big', 'model.bin');

  it('is mounted read-only (ro in mountinfo) and shows only the prefix', () => {
    expect(findMount(fixture.mount.mountpoint)?.mountOptions).toContain('ro');
    expect(fs.readdirSync(fixture.mount.mountpoint)).not.toContain('outside');
  });

  it('reads a 64 MiB object whole with cat', async () => {
    const result = await run('sh', ['-c', `cat '${bigFile()}' | sha256sum`]);
    expect(result.stdout.split(' ')[0]).toBe(sha256(big));
  });

  it('reads a 64 MiB object at random offsets with 4 parallel readers', async () => {
    const readers = Array.from({ length: 4 }, () => {
      const ranges = Array.from({ length: 6 }, () => {
        const start = Math.floor(Math.random() * (BIG - 1));
        const length = Math.min(BIG - start, 1 + Math.floor(Math.random() * 3 * 1024 * 1024));
        return { start, length };
      });
      const script = ranges
        .map(({ start, length }) => `dd if='${bigFile()}' bs=65536 iflag=skip_bytes,count_bytes skip=${start} count=${length} status=none | sha256sum`)
        .join('; ');
      return run('sh', ['-c', script]).then((result) => ({ result, ranges }));
    });
    for (const { result, ranges } of await Promise.all(readers)) {
      expect(result.code).toBe(0);
      expect(result.stdout.trim().split('\n').map((line) => line.split(' ')[0])).toEqual(ranges.map(({ start, length }) => sha256(big.subarray(start, start + length))));
    }
  });

  it('keeps credentials out of argv and logs', () => {
    const secret = testS3().secretAccessKey;
    expect(fs.readFileSync(`/proc/${fixture.mount.child.pid}/cmdline`, 'utf8')).not.toContain(secret);
    expect(fixture.mount.stderr()).not.toContain(secret);
    expect(fixture.mount.stderr()).toContain('"msg":"mounted"');
  });
});

describe('granary mount lifecycle', () => {
  let base: string;
  let source: string;
  let mnt: string;

  beforeEach(() => {
    base = tempBase('granary-mount-life-');
    source = path.join(base, 'source');
    mnt = path.join(base, 'mnt');
    makeTree(source, { 'a.txt': Buffer.from('a\n') });
    fs.mkdirSync(mnt);
  });

  afterEach(() => cleanUp());

  it('unmounts on SIGTERM and exits 0', async () => {
    const mount = await startMount(source, mnt);
    expect(findMount(mnt)).toBeDefined();
    mount.child.kill('SIGTERM');
    expect(await mount.exited).toEqual({ code: 0, signal: null });
    expect(findMount(mnt)).toBeUndefined();
    expect(fs.readdirSync(mnt)).toEqual([]);
  });

  it('unmounts on SIGINT and exits 0', async () => {
    const mount = await startMount(source, mnt);
    mount.child.kill('SIGINT');
    expect(await mount.exited).toEqual({ code: 0, signal: null });
    expect(findMount(mnt)).toBeUndefined();
  });

  it('detaches a busy mount lazily on SIGTERM and exits once the last open file closes', async () => {
    const mount = await startMount(source, mnt);
    // A process with an open file (and its cwd) inside the mount makes a plain umount fail with EBUSY.
    const holder = spawn('sh', ['-c', 'exec 3< a.txt; exec sleep 60'], { cwd: mnt, stdio: 'ignore' });
    children.add(holder);
    // The umount must meet the open file: wait until the holder's fd 3 is the file (after its exec of sleep).
    const opened = () => {
      try {
        return fs.readlinkSync(`/proc/${holder.pid}/fd/3`) === path.join(fs.realpathSync(mnt), 'a.txt');
      } catch {
        return false;
      }
    };
    await until(opened, 'the holder has a.txt open');
    mount.child.kill('SIGTERM');
    await until(() => !findMount(mnt), 'the mount is detached', 5000);
    expect(findMount(mnt)).toBeUndefined(); // detached at once...
    expect(mount.child.exitCode).toBeNull(); // ...but still serving the open file
    expect(mount.stderr()).toContain('detaching lazily');
    const closedAt = Date.now();
    holder.kill('SIGKILL');
    expect(await mount.exited).toEqual({ code: 0, signal: null });
    // Well before the 10 s unmount timeout (past which the connection would be aborted instead).
    expect(Date.now() - closedAt).toBeLessThan(5000);
  });

  it('exits 0 when someone else unmounts it', async () => {
    const mount = await startMount(source, mnt);
    expect((await run('umount', [mnt])).code).toBe(0);
    expect(await mount.exited).toEqual({ code: 0, signal: null });
  });

  it('leaves a dead mount (ENOTCONN) when killed with SIGKILL, which umount cleans up', async () => {
    const mount = await startMount(source, mnt);
    // `granary mount` is the holder of the FUSE connection; its serving process ends when the holder dies.
    const serving = servingProcess(mount.child.pid as number) as number;
    expect(serving).toBeGreaterThan(0);
    mount.child.kill('SIGKILL');
    expect((await mount.exited).signal).toBe('SIGKILL');
    for (let i = 0; i < 500 && fs.existsSync(`/proc/${serving}`); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fs.existsSync(`/proc/${serving}`)).toBe(false);
    expect(findMount(mnt)?.fsType).toBe('fuse.granary');
    expect(() => fs.statSync(mnt)).toThrow(expect.objectContaining({ code: 'ENOTCONN' }));
    expect(() => fs.readdirSync(mnt)).toThrow(expect.objectContaining({ code: 'ENOTCONN' }));

    // A new mount on it refuses with the fix.
    const again = spawnMount(source, mnt);
    expect((await again.exited).code).not.toBe(0);
    expect(again.stderr()).toContain(`run 'umount ${mnt}'`);

    expect((await run('umount', [mnt])).code).toBe(0);
    expect(findMount(mnt)).toBeUndefined();
    expect(fs.readdirSync(mnt)).toEqual([]);
  });

  it('refuses a mountpoint that is already a mount', async () => {
    const first = await startMount(source, mnt);
    const second = spawnMount(source, mnt);
    expect((await second.exited).code).not.toBe(0);
    expect(second.stderr()).toMatch(/already a mount/);
    expect(readMountInfo().filter((entry) => entry.mountPoint === fs.realpathSync(base) + '/mnt')).toHaveLength(1);
    first.child.kill('SIGTERM');
    await first.exited;
  });

  it('refuses a missing mountpoint or one that is not a directory', async () => {
    const missing = spawnMount(source, path.join(base, 'nope'));
    expect((await missing.exited).code).not.toBe(0);
    expect(missing.stderr()).toMatch(/does not exist: create the directory first/);
    const file = spawnMount(source, path.join(source, 'a.txt'));
    expect((await file.exited).code).not.toBe(0);
    expect(file.stderr()).toMatch(/is not a directory/);
    expect(missing.stdout() + file.stdout()).toBe('');
  });
});
