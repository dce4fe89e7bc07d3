// The real `granary` command (the build) failing the ways people make it fail: each expected error is one line on
// stderr that says what to fix, exit code 1, no JSON log line with a stack beside it and no AWS SDK warning;
// --log-level debug adds the stack. Logs come as JSON on a pipe, as text with --log-format text.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { builtCli } from '../../e2e/support/built-cli';
import { s3MountEnv } from '../../e2e/support/mount';
import { freePort, testS3 } from '../../e2e/support/s3-server';

// Real processes (node, helm) start slowly on a loaded machine: no test here may fail on jest's 5 s default.
jest.setTimeout(60_000);

interface Run {
  code: number | null;
  stderr: string;
}

/** Runs `granary ARGS` with only PATH, HOME and `env` in its environment (not the test's: its AWS_* and the SDK opt-out). */
function granary(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [builtCli(), ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 60_000 }, (_error, _stdout, stderr) =>
      resolve({ code: child.exitCode, stderr }),
    );
  });
}

const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '');

let dir: string;
let mountpoint: string;
let stateDir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-cli-errors-'));
  mountpoint = path.join(dir, 'mnt');
  stateDir = path.join(dir, 'state');
  fs.mkdirSync(mountpoint);
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** `granary mount SOURCE` at the test's empty mountpoint. */
const mount = (source: string, env: NodeJS.ProcessEnv = {}, flags: string[] = []) => granary(['mount', source, mountpoint, '--state-dir', stateDir, ...flags], env);

/** An endpoint where nothing listens: connections are refused. */
async function refusingEndpoint(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

describe('granary on an expected error', () => {
  it('says a missing mountpoint in one line and exits 1', async () => {
    const run = await granary(['mount', dir, path.join(dir, 'absent'), '--state-dir', stateDir]);
    expect(run).toEqual({ code: 1, stderr: `granary: mountpoint ${path.join(dir, 'absent')} does not exist: create the directory first (mkdir -p ${path.join(dir, 'absent')})\n` });
  });

  it('says an unreachable store in one line and exits 1', async () => {
    const run = await mount('s3://bucket/prefix', { AWS_ENDPOINT_URL: await refusingEndpoint(), AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' });
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([expect.stringMatching(/^granary: cannot use s3:\/\/bucket at .*ECONNREFUSED.*check that the endpoint is reachable/)]);
  });

  it('says a missing bucket in one line and exits 1', async () => {
    const run = await mount('s3://granary-no-such-bucket/prefix', s3MountEnv(testS3()));
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([expect.stringMatching(/^granary: .*granary-no-such-bucket/)]);
  });

  it('says wrong credentials in one line and exits 1', async () => {
    const run = await mount('s3://granary-any-bucket/prefix', { ...s3MountEnv(testS3()), AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([expect.stringMatching(/^granary: /)]);
    expect(run.stderr).not.toContain('not-the-secret');
  });

  it('says a missing token file of cache serve in one line and exits 1', async () => {
    const token = path.join(dir, 'token');
    const run = await granary(['cache', 'serve', '--listen', '127.0.0.1:0', '--token-file', token]);
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([`granary: cannot read the cache token file ${token} (ENOENT): mount the cluster token Secret there, or pass the right file to --token-file (cache serve) or --cache-token-file (mount, warmup, csi)`]);
  });

  it('says what is wrong with --s3-version-ttl: not a whole number (then the usage), above an hour, or without --s3-listen', async () => {
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, 'a-cluster-token-of-enough-length-0123456789');
    const serve = (...flags: string[]) => granary(['cache', 'serve', '--listen', '127.0.0.1:0', '--token-file', tokenFile, '--ram-bytes', '64Mi', ...flags]);
    const fraction = await serve('--s3-listen', '127.0.0.1:0', '--s3-keys-file', tokenFile, '--s3-version-ttl', '1.5');
    expect(fraction.code).toBe(1);
    expect(lines(fraction.stderr)[0]).toBe("error: option '--s3-version-ttl <ms>' argument '1.5' is invalid. expected a whole number");
    const tooLong = await serve('--s3-listen', '127.0.0.1:0', '--s3-keys-file', tokenFile, '--s3-version-ttl', '3600001');
    expect(tooLong.code).toBe(1);
    expect(lines(tooLong.stderr)).toEqual(['granary: invalid cache configuration: --s3-version-ttl (s3.versionTtlMs): Too big: expected number to be <=3600000']);
    const alone = await serve('--s3-version-ttl', '0');
    expect(alone.code).toBe(1);
    expect(lines(alone.stderr)).toEqual(['granary: --s3-keys-file, --s3-region, --s3-virtual-host, --s3-readahead, --s3-version-ttl, --s3-tls-cert and --s3-tls-key configure the S3 API: give --s3-listen HOST:PORT too']);
  });

  it('names the flag of each option out of range, with its field, in one line', async () => {
    const run = await granary(['mount', dir, mountpoint, '--state-dir', stateDir, '--metadata-deadline', '5', '--ram-cache-bytes', '1']);
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([expect.stringMatching(/^granary: invalid mount configuration: --metadata-deadline \(deadlines\.metadataMs\): Too small: expected number to be >=100; --ram-cache-bytes \(read\.cacheBytes\): /)]);
  });

  it('names AWS_ENDPOINT_URL and the fix when it has no scheme', async () => {
    const run = await mount('s3://bucket/prefix', { AWS_ENDPOINT_URL: '127.0.0.1:9000', AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' });
    expect(run).toEqual({ code: 1, stderr: 'granary: AWS_ENDPOINT_URL=127.0.0.1:9000 is not an http:// or https:// URL: give the scheme too, e.g. AWS_ENDPOINT_URL=http://127.0.0.1:9000 (https:// for TLS)\n' });
  });

  it('names AWS_REGION and the fix when it is empty', async () => {
    const run = await mount('s3://bucket/prefix', { AWS_ENDPOINT_URL: await refusingEndpoint(), AWS_REGION: '', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' });
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([expect.stringMatching(/^granary: AWS_REGION is set but empty: set it to the bucket's region/)]);
  });

  it('names an empty AWS_REGION at the start of cache serve, not at its first fill', async () => {
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, 'a-cluster-token-of-enough-length-0123456789');
    const run = await granary(['cache', 'serve', '--listen', '127.0.0.1:0', '--token-file', tokenFile, '--ram-bytes', '64Mi'], { AWS_ENDPOINT_URL: await refusingEndpoint(), AWS_REGION: '', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' });
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([expect.stringMatching(/^granary: AWS_REGION is set but empty/)]);
  });

  it('adds the stack at --log-level debug', async () => {
    const run = await granary(['mount', dir, path.join(dir, 'absent'), '--state-dir', stateDir, '--log-level', 'debug']);
    expect(run.code).toBe(1);
    const report = lines(run.stderr).filter((line) => !line.startsWith('{'));
    expect(report[0]).toBe(`granary: mountpoint ${path.join(dir, 'absent')} does not exist: create the directory first (mkdir -p ${path.join(dir, 'absent')})`);
    expect(report[1]).toMatch(/^MountpointError: mountpoint .* does not exist/);
    expect(report[2]).toMatch(/^\s+at /);
  });
});

describe('granary under Node 20', () => {
  it('prints no NodeVersionSupportWarning of the AWS SDK', async () => {
    const run = await mount('s3://granary-no-such-bucket/prefix', s3MountEnv(testS3()), ['--log-level', 'debug']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('granary-no-such-bucket');
    expect(run.stderr).not.toContain('NodeVersionSupportWarning');
  });
});

describe('granary --log-format', () => {
  it('logs JSON with numeric levels and their names on a pipe', async () => {
    const run = await granary(['mount', dir, path.join(dir, 'absent'), '--state-dir', stateDir, '--log-level', 'debug']);
    const logged = lines(run.stderr).filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toContainEqual(expect.objectContaining({ level: 20, levelName: 'debug', name: 'granary-mount-holder', msg: 'serving process started' }));
  });

  it('logs text lines with --log-format text', async () => {
    const run = await granary(['mount', dir, path.join(dir, 'absent'), '--state-dir', stateDir, '--log-level', 'debug', '--log-format', 'text']);
    expect(run.stderr).not.toMatch(/^\{/m);
    expect(lines(run.stderr)).toContainEqual(expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z DEBUG granary-mount-holder: serving process started pid=\d+$/));
  });
});
