import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fuseSide, notInstalled, versionLine, writeSecrets, type MountPlan } from './fuse-side';
import { geesefsPlan } from './geesefs';
import { juicefsFormatPlan, juicefsMountPlan, stateDirOf } from './juicefs';
import { mountS3Plan } from './mount-s3';
import { s3fsPlan } from './s3fs';
import type { Volume } from './side';

const volume: Volume = { endpoint: 'http://127.0.0.1:7070', region: 'us-east-1', accessKeyId: 'AKIDBENCH', secretAccessKey: 'SECRET-never-in-argv', bucket: 'bench-x1', prefix: 'vol' };
const scratch = '/tmp/granary-bench-1/seq-read-s3fs-1-abc';
const mnt = `${scratch}/mnt`;

/** Credentials never on the command line, where `ps` shows them to every user. */
function expectNoCredentialsInArgs(plan: MountPlan): void {
  for (const arg of plan.args) {
    expect(arg).not.toContain(volume.secretAccessKey);
    expect(arg).not.toContain(volume.accessKeyId);
  }
}

describe('s3fs', () => {
  it('mounts BUCKET:/PREFIX in the foreground with path-style requests to the endpoint and the throughput options', () => {
    const plan = s3fsPlan(volume, mnt, scratch);
    expect(plan.args).toEqual(['bench-x1:/vol', mnt, '-f', '-o',
      `url=http://127.0.0.1:7070,endpoint=us-east-1,passwd_file=${scratch}/passwd-s3fs,use_path_request_style,parallel_count=16,multipart_size=16,allow_other`]);
    expectNoCredentialsInArgs(plan);
  });

  it('puts the credentials in a passwd file in the scratch dir, and none in its environment', () => {
    const plan = s3fsPlan(volume, mnt, scratch);
    expect(plan.secrets).toEqual([{ path: `${scratch}/passwd-s3fs`, content: 'AKIDBENCH:SECRET-never-in-argv\n' }]);
    expect(JSON.stringify(plan.env)).not.toContain(volume.secretAccessKey);
    expect(plan.env.HOME).toBe(scratch);
  });
});

describe('geesefs', () => {
  it('mounts BUCKET:PREFIX at the endpoint in the foreground, credentials in AWS_* only', () => {
    const plan = geesefsPlan(volume, mnt, scratch);
    expect(plan.args).toEqual(['-f', '--endpoint', 'http://127.0.0.1:7070', '--region', 'us-east-1', '--list-type=2', '-o', 'allow_other', 'bench-x1:vol', mnt]);
    expect(plan.env).toMatchObject({ AWS_ACCESS_KEY_ID: 'AKIDBENCH', AWS_SECRET_ACCESS_KEY: 'SECRET-never-in-argv' });
    expectNoCredentialsInArgs(plan);
  });
});

describe('mount-s3', () => {
  it('mounts the prefix path-style at the endpoint, writes and deletes allowed, credentials in AWS_* only', () => {
    const plan = mountS3Plan(volume, mnt, scratch);
    expect(plan.args).toEqual(['bench-x1', mnt, '--foreground', '--prefix', 'vol/', '--endpoint-url', 'http://127.0.0.1:7070', '--region', 'us-east-1',
      '--force-path-style', '--allow-delete', '--allow-overwrite', '--allow-other']);
    expect(plan.env).toMatchObject({ AWS_ACCESS_KEY_ID: 'AKIDBENCH', AWS_SECRET_ACCESS_KEY: 'SECRET-never-in-argv', AWS_REGION: 'us-east-1' });
    expectNoCredentialsInArgs(plan);
  });
});

describe('juicefs', () => {
  const state = stateDirOf(scratch);

  it('keeps its metadata beside the runs\' scratch dirs, for the whole bench', () => {
    expect(state).toBe('/tmp/granary-bench-1/juicefs');
  });

  it('formats an S3 volume on the bucket with SQLite metadata, object store credentials in ACCESS_KEY/SECRET_KEY only', () => {
    const plan = juicefsFormatPlan(volume, state);
    expect(plan.args).toEqual(['format', '--storage', 's3', '--bucket', 'http://127.0.0.1:7070/bench-x1', `sqlite3://${state}/meta.db`, 'juicefs-bench']);
    expect(plan.env).toMatchObject({ ACCESS_KEY: 'AKIDBENCH', SECRET_KEY: 'SECRET-never-in-argv' });
    expectNoCredentialsInArgs(plan);
  });

  it('mounts in the foreground with a cache dir of the run\'s own, and needs no credentials (the metadata holds them)', () => {
    const plan = juicefsMountPlan(volume, mnt, scratch);
    expect(plan.args).toEqual(['mount', `sqlite3://${state}/meta.db`, mnt, '--cache-dir', `${scratch}/cache`, '-o', 'allow_other']);
    expect(JSON.stringify(plan.env)).not.toContain(volume.secretAccessKey);
  });
});

describe('a TLS run', () => {
  const secure: Volume = { ...volume, endpoint: 'https://127.0.0.1:7070', caFile: '/tmp/granary-bench-1/tls-x/cert.pem' };

  it('gives each peer the run\'s certificate the way its client reads a CA file, and none over plain http', () => {
    const stateDir = stateDirOf(scratch);
    const plans: Array<[string, MountPlan, MountPlan, string]> = [
      ['s3fs', s3fsPlan(secure, mnt, scratch), s3fsPlan(volume, mnt, scratch), 'CURL_CA_BUNDLE'],
      ['geesefs', geesefsPlan(secure, mnt, scratch), geesefsPlan(volume, mnt, scratch), 'SSL_CERT_FILE'],
      ['mount-s3', mountS3Plan(secure, mnt, scratch), mountS3Plan(volume, mnt, scratch), 'AWS_CA_BUNDLE'],
      ['juicefs format', juicefsFormatPlan(secure, stateDir), juicefsFormatPlan(volume, stateDir), 'SSL_CERT_FILE'],
      ['juicefs mount', juicefsMountPlan(secure, mnt, scratch), juicefsMountPlan(volume, mnt, scratch), 'SSL_CERT_FILE'],
    ];
    for (const [name, overTls, plain, variable] of plans) {
      expect({ name, ca: overTls.env[variable] }).toEqual({ name, ca: secure.caFile });
      expect({ name, ca: plain.env[variable] }).toEqual({ name, ca: undefined });
    }
    expect(s3fsPlan(secure, mnt, scratch).args[4]).toMatch(/^url=https:\/\/127\.0\.0\.1:7070,/);
  });
});

describe('a peer\'s side', () => {
  it('says "not installed" when its mounter is not on PATH', async () => {
    const side = fuseSide({ name: 'geesefs', command: 'granary-no-such-mounter', fsType: 'fuse.x', settings: '', trust: '', parseVersion: () => 'x', plan: geesefsPlan });
    await expect(side.version()).rejects.toThrow(notInstalled('granary-no-such-mounter'));
    expect(notInstalled('geesefs')).toBe('not installed (geesefs is not on PATH)');
  });

  it('writes credential files readable by their owner only', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-secrets-'));
    try {
      const file = path.join(dir, 'passwd');
      fs.writeFileSync(file, 'old', { mode: 0o644 });
      writeSecrets([{ path: file, content: 'a:b\n' }]);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(file, 'utf8')).toBe('a:b\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads the version out of --version output', () => {
    expect(versionLine('Amazon Simple Storage Service File System V1.90 (commit:unknown) with GnuTLS(gcrypt)\n', /File System (V[\d.]+)/)).toBe('V1.90');
    expect(versionLine('mount-s3 1.9.0\n', /mount-s3\s+(\S+)/)).toBe('1.9.0');
    expect(versionLine('something else\nsecond', /version\s+(\S+)/)).toBe('something else');
  });
});
