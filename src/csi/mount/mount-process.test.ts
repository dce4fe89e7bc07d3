import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../../log/logger';
import { CsiError } from '../errors';
import { FakeMounter } from './fake';
import { mountEnvironment, MountProcesses, readLogTail } from './mount-process';
import { mountSource, volumeHash, type MountRequest } from './supervisor';

const standIn = path.join(__dirname, 'testdata', 'stand-in-mount.js');
const log = silentLogger();
const SECRET = 'stand-in-secret-value-123';

function request(stagingTargetPath: string, overrides: Partial<MountRequest> = {}): MountRequest {
  return {
    volumeId: 'bucket-one/team/data',
    location: { bucket: 'bucket-one', prefix: 'team/data/' },
    stagingTargetPath,
    readOnly: false,
    settings: { endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'AKIDSTANDIN', secretAccessKey: SECRET } },
    flags: [],
    ...overrides,
  };
}

describe('MountProcesses with a stand-in mount script', () => {
  let dir: string;
  let mounter: FakeMounter;
  let processes: MountProcesses;
  const staging = () => path.join(dir, 'staging');

  function supervisor(mode: string, options: { readyTimeoutMs?: number; stopGraceMs?: number } = {}): MountProcesses {
    processes = new MountProcesses({
      mounter,
      cliScript: standIn,
      stateDir: path.join(dir, 'state'),
      readyTimeoutMs: options.readyTimeoutMs ?? 5000,
      stopGraceMs: options.stopGraceMs ?? 2000,
      baseEnvironment: { PATH: process.env.PATH, GRANARY_STAND_IN_MODE: mode, UNRELATED_SECRET: 'x' },
    });
    return processes;
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-mount-process-'));
    mounter = new FakeMounter();
  });

  afterEach(async () => {
    await processes?.stopAll(log);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts the process, waits for ready, confirms the mount and records it', async () => {
    mounter.add({ source: 's3://bucket-one/team/data/', target: staging(), fsType: 'fuse.granary' });
    const record = await supervisor('ready').start(request(staging(), { readOnly: true }), log);
    expect(record).toMatchObject({ volumeId: 'bucket-one/team/data', stagingTargetPath: staging(), readOnly: true });
    expect(record.logPath).toBe(path.join(dir, 'state', `${volumeHash('bucket-one/team/data')}.log`));
    expect(processes.describe('bucket-one/team/data')?.pid).toBe(record.pid);

    // argv: the source, the path, the flag and the volume's own state directory; never the credentials.
    const cmdline = fs.readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').split('\0');
    const volumeState = path.join(dir, 'state', volumeHash('bucket-one/team/data'));
    expect(cmdline.slice(1)).toEqual([standIn, 'mount', 's3://bucket-one/team/data/', staging(), '--read-only', '--state-dir', volumeState, '']);
    expect(processes.volumeStateDir('bucket-one/team/data')).toBe(volumeState);
    // Another volume gets another folder.
    expect(processes.volumeStateDir('bucket-one/team/other')).not.toBe(volumeState);
    expect(cmdline.join(' ')).not.toContain(SECRET);

    expect(await processes.stop('bucket-one/team/data', log)).toBe(true);
    expect(processes.describe('bucket-one/team/data')).toBeUndefined();
    const logText = fs.readFileSync(record.logPath, 'utf8');
    expect(logText).toContain('unmounting on SIGTERM');
    expect(logText).not.toContain(SECRET);
    // The credentials reached the child through its environment, with nothing else of the plugin's.
    expect(logText).toContain('"AWS_SECRET_ACCESS_KEY"');
    expect(logText).not.toContain('UNRELATED_SECRET');
  });

  it('appends the flags after the source, the path, --read-only and --state-dir, then the metrics socket of a mount with the cache, and notes them in the log', async () => {
    mounter.add({ source: 's3://bucket-one/team/data/', target: staging(), fsType: 'fuse.granary' });
    const flags = ['--cache-peers', 'http://10.0.0.5:7070', '--uid', '1234'];
    const processes = supervisor('ready');
    const record = await processes.start(request(staging(), { readOnly: true, flags }), log);
    const cmdline = fs.readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').split('\0');
    const volumeState = path.join(dir, 'state', volumeHash('bucket-one/team/data'));
    const metricsSocket = path.join(volumeState, 'metrics.sock');
    expect(cmdline.slice(1)).toEqual([standIn, 'mount', 's3://bucket-one/team/data/', staging(), '--read-only', '--state-dir', volumeState, ...flags,
      '--cache-metrics-socket', metricsSocket, '']);
    expect(fs.readFileSync(record.logPath, 'utf8')).toContain('"flags":["--cache-peers","http://10.0.0.5:7070","--uid","1234"]');
    expect(record.metricsSocket).toBe(metricsSocket);
    expect(processes.list()).toEqual([record]);
  });

  it('gives a mount without the cache no metrics socket (it has no counters to serve)', async () => {
    mounter.add({ source: 's3://bucket-one/team/data/', target: staging(), fsType: 'fuse.granary' });
    const record = await supervisor('ready').start(request(staging(), { readOnly: false, flags: ['--uid', '1234'] }), log);
    expect(fs.readFileSync(`/proc/${record.pid}/cmdline`, 'utf8')).not.toContain('--cache-metrics-socket');
    expect(record.metricsSocket).toBeUndefined();
  });

  it('fails with the log tail and the log path when the process exits before ready, and unmounts', async () => {
    const error = await supervisor('fail').start(request(staging()), log).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CsiError);
    expect((error as CsiError).code).toBe('INTERNAL');
    expect((error as CsiError).message).toMatch(/exited \(code 1\) before it was ready/);
    expect((error as CsiError).message).toContain('AccessDenied: the access key is not valid');
    expect((error as CsiError).message).toContain(`see the mount log at ${path.join(dir, 'state')}`);
    expect((error as CsiError).message).not.toContain(SECRET);
    expect(mounter.calls).toContainEqual({ method: 'unmount', target: staging() });
    expect(processes.describe('bucket-one/team/data')).toBeUndefined();
  });

  it('kills a process that is not ready within the timeout', async () => {
    const started = Date.now();
    const error = await supervisor('hang', { readyTimeoutMs: 300 }).start(request(staging()), log).catch((e: unknown) => e);
    expect((error as CsiError).code).toBe('DEADLINE_EXCEEDED');
    expect((error as CsiError).message).toMatch(/was not ready within 300 ms/);
    expect((error as CsiError).message).toContain('stand-in mount starting');
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('fails when the process says ready but the staging path is not a mount', async () => {
    const error = await supervisor('ready').start(request(staging()), log).catch((e: unknown) => e);
    expect((error as CsiError).message).toMatch(/said ready but .* is not-mounted/);
  });

  it('SIGKILLs a process that ignores SIGTERM after the grace period', async () => {
    mounter.add({ source: 's3://bucket-one/team/data/', target: staging(), fsType: 'fuse.granary' });
    const record = await supervisor('stubborn', { stopGraceMs: 200 }).start(request(staging()), log);
    await processes.stop(record.volumeId, log);
    expect(fs.existsSync(`/proc/${record.pid}`)).toBe(false);
    expect(fs.readFileSync(record.logPath, 'utf8')).toContain('ignoring SIGTERM');
  });

  it('refuses a second process for a volume that has one', async () => {
    mounter.add({ source: 's3://bucket-one/team/data/', target: staging(), fsType: 'fuse.granary' });
    await supervisor('ready').start(request(staging()), log);
    await expect(processes.start(request(staging()), log)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
  });

  it('forgets a process that dies on its own', async () => {
    mounter.add({ source: 's3://bucket-one/team/data/', target: staging(), fsType: 'fuse.granary' });
    const record = await supervisor('ready').start(request(staging()), log);
    process.kill(record.pid, 'SIGKILL');
    for (let i = 0; i < 100 && processes.describe(record.volumeId); i++) await new Promise((r) => setTimeout(r, 20));
    expect(processes.describe(record.volumeId)).toBeUndefined();
    expect(await processes.stop(record.volumeId, log)).toBe(false);
  });

  it('fails clearly when the CLI script is missing', async () => {
    const missing = new MountProcesses({ mounter, cliScript: path.join(dir, 'nope.js'), stateDir: dir });
    await expect(missing.start(request(staging()), log)).rejects.toThrow(/CLI script .* does not exist/);
  });
});

describe('mountEnvironment', () => {
  const base = {
    PATH: '/bin', HOME: '/root', AWS_REGION: 'eu-west-1', AWS_SESSION_TOKEN: 'plugin-token', AWS_ROLE_ARN: 'arn', GRANARY_LOG_LEVEL: 'debug',
    KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443', POD_NAMESPACE: 'granary', DATABASE_PASSWORD: 'unrelated',
  };

  it('keeps plumbing (Kubernetes API and namespace for cache discovery included), AWS_* and GRANARY_* from the plugin and drops the rest', () => {
    expect(mountEnvironment(base, {})).toEqual({
      PATH: '/bin', HOME: '/root', AWS_REGION: 'eu-west-1', AWS_SESSION_TOKEN: 'plugin-token', AWS_ROLE_ARN: 'arn', GRANARY_LOG_LEVEL: 'debug',
      KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443', POD_NAMESPACE: 'granary', GRANARY_READY_FD: '3',
    });
  });

  it('drops the plugin credential sources when the secrets carry credentials', () => {
    const env = mountEnvironment(base, { region: 'us-east-1', credentials: { accessKeyId: 'A', secretAccessKey: 'S' } });
    expect(env).toMatchObject({ AWS_ACCESS_KEY_ID: 'A', AWS_SECRET_ACCESS_KEY: 'S', AWS_REGION: 'us-east-1' });
    expect(env.AWS_SESSION_TOKEN).toBeUndefined();
    expect(env.AWS_ROLE_ARN).toBeUndefined();
  });
});

describe('helpers', () => {
  it('formats the mount source with the prefix', () => {
    expect(mountSource({ bucket: 'b-1', prefix: '' })).toBe('s3://b-1/');
    expect(mountSource({ bucket: 'b-1', prefix: 'a/b/' })).toBe('s3://b-1/a/b/');
  });

  it('reads the last lines of a log', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'granary-tail-')), 'x.log');
    fs.writeFileSync(file, Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\n') + '\n');
    expect(readLogTail(file, 3)).toBe('line 47\nline 48\nline 49');
    expect(readLogTail(file, 3, 10)).toBe('...48\nline 49');
    expect(readLogTail(path.join(file, 'missing'), 3)).toBe('');
    fs.rmSync(path.dirname(file), { recursive: true });
  });
});
