import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { mayList, mayLocate, mayRead, parseAccessKeys, parseGrant, readAccessKeysFile } from './access-keys';

const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const OTHER_SECRET = 'another-secret-of-enough-length';
const FILE = '/etc/granary/s3-keys.json';

/** A keys file holding `keys`. */
const keysFile = (...keys: unknown[]): string => JSON.stringify({ keys });

/** The message parseAccessKeys throws for `text`, checked to hold no secret. */
function problemOf(text: string): string {
  try {
    parseAccessKeys(text, FILE);
  } catch (error) {
    const message = (error as Error).message;
    for (const secret of [SECRET, OTHER_SECRET, 'short-secret', 'has a space in it, long enough']) expect(message).not.toContain(secret);
    return message;
  }
  throw new Error('parsed');
}

describe('parseAccessKeys', () => {
  const keys = parseAccessKeys(
    keysFile(
      { accessKeyId: 'AKIAGRANARYREADER01', secretAccessKey: SECRET, grants: ['models', 'datasets/team-a/', 'datasets/team-b'] },
      { accessKeyId: 'AKIAGRANARYREADER02', secretAccessKey: OTHER_SECRET, grants: ['models/llama/'] },
    ),
    FILE,
  );

  it('gives each key\'s secret and grants, prefixes made folders', () => {
    expect(keys.size).toBe(2);
    expect(keys.secretOf('AKIAGRANARYREADER01')).toBe(SECRET);
    expect(keys.secretOf('AKIAUNKNOWN00000001')).toBeUndefined();
    expect(keys.grantsOf('AKIAGRANARYREADER01')).toEqual([
      { bucket: 'models', prefix: '' },
      { bucket: 'datasets', prefix: 'team-a/' },
      { bucket: 'datasets', prefix: 'team-b/' },
    ]);
    expect(keys.grantsOf('AKIAUNKNOWN00000001')).toEqual([]);
  });

  it('shows no secret when the keys are logged or inspected', () => {
    expect(JSON.stringify(keys)).not.toContain(SECRET);
    expect(inspect(keys, { depth: 10, showHidden: true })).not.toContain(SECRET);
  });

  it('lets a key read objects only within its grants', () => {
    const whole = keys.grantsOf('AKIAGRANARYREADER01');
    const folder = keys.grantsOf('AKIAGRANARYREADER02');
    expect(mayRead(whole, 'models', 'any/key.bin')).toBe(true);
    expect(mayRead(whole, 'datasets', 'team-a/x/y.parquet')).toBe(true);
    expect(mayRead(whole, 'datasets', 'team-b/x')).toBe(true);
    expect(mayRead(whole, 'datasets', 'team-c/x')).toBe(false);
    expect(mayRead(whole, 'datasets', 'team-a')).toBe(false);
    expect(mayRead(whole, 'datasets', 'team-bee/x')).toBe(false);
    expect(mayRead(whole, 'other', 'team-a/x')).toBe(false);
    expect(mayRead(folder, 'models', 'llama/7b/weights.safetensors')).toBe(true);
    expect(mayRead(folder, 'models', 'llama-private/x')).toBe(false);
    expect(mayRead(folder, 'models', 'mistral/x')).toBe(false);
  });

  it('lets a key list only prefixes that lie within a granted folder, anything in a granted bucket', () => {
    const whole = keys.grantsOf('AKIAGRANARYREADER01');
    const folder = keys.grantsOf('AKIAGRANARYREADER02');
    expect(mayList(whole, 'models', '')).toBe(true);
    expect(mayList(whole, 'models', 'a')).toBe(true);
    expect(mayList(folder, 'models', 'llama/')).toBe(true);
    expect(mayList(folder, 'models', 'llama/7b')).toBe(true);
    expect(mayList(folder, 'models', 'llama')).toBe(false);
    expect(mayList(folder, 'models', '')).toBe(false);
    expect(mayList(folder, 'models', 'll')).toBe(false);
    expect(mayList(whole, 'datasets', '')).toBe(false);
    expect(mayList(whole, 'datasets', 'team-a/')).toBe(true);
    expect(mayLocate(folder, 'models')).toBe(true);
    expect(mayLocate(folder, 'datasets')).toBe(false);
  });

  it('refuses a file that is not JSON, saying where, without quoting it', () => {
    const message = problemOf(`{"keys":[{"accessKeyId":"AKIAGRANARYREADER01",\n "secretAccessKey":"${SECRET}" "grants":[]}]}`);
    expect(message).toMatch(/^the S3 gateway access keys file \/etc\/granary\/s3-keys.json is not valid JSON( \(line 2, column \d+\))?: check it with jq/);
  });

  it('lists every problem of a bad file with its place and what to fix, never a secret', () => {
    const message = problemOf(
      keysFile(
        { accessKeyId: 'akia-lower', secretAccessKey: 'short-secret', grants: ['Bad_Bucket/x'] },
        { accessKeyId: 'AKIAGRANARYREADER01', secretAccessKey: 'has a space in it, long enough', grants: [] },
        { accessKeyId: 'AKIAGRANARYREADER01', secretAccessKey: SECRET, grants: ['s3://models/x/', 'models//x', 'models/x'], grant: 'models' },
      ),
    );
    expect(message).toContain(`invalid S3 gateway access keys (${FILE}) configuration`);
    expect(message).toContain('keys.0.accessKeyId: an access key id is 16 to 128 characters, upper-case letters and digits only');
    expect(message).toContain('keys.0.secretAccessKey: a secret is at least 20 characters long');
    expect(message).toContain('keys.0.grants.0: "Bad_Bucket" in the grant "Bad_Bucket/x" is not a bucket name');
    expect(message).toContain('keys.1.secretAccessKey: a secret holds no whitespace');
    expect(message).toContain('keys.1.grants: give at least one grant');
    expect(message).toContain('keys.2.grants.0: "s3://models/x/": write the grant without s3://');
    expect(message).toContain('keys.2.grants.1: the grant "models//x" has an empty path segment');
    expect(message).toContain('keys.2: Unrecognized key: "grant"');
    expect(message).toContain('keys.2.accessKeyId: "AKIAGRANARYREADER01" is also the id of keys.1');
  });

  it('refuses a missing or mistyped secret, a file without keys', () => {
    expect(problemOf(keysFile({ accessKeyId: 'AKIAGRANARYREADER01', grants: ['models'] }))).toContain('keys.0.secretAccessKey: a secretAccessKey (a string) is required');
    expect(problemOf(keysFile({ accessKeyId: 'AKIAGRANARYREADER01', secretAccessKey: 1234567890, grants: ['models'] }))).toContain('keys.0.secretAccessKey');
    expect(problemOf('[]')).toContain('config: ');
    expect(problemOf('{}')).toContain('keys: ');
    expect(problemOf('{"keys":[null,5]}')).toMatch(/keys\.0: .*; keys\.1: /);
    expect(parseAccessKeys('{"keys":[]}', FILE).size).toBe(0);
  });
});

describe('parseGrant', () => {
  it('reads a bucket, a folder, and a prefix as a folder', () => {
    expect(parseGrant('models')).toEqual({ bucket: 'models', prefix: '' });
    expect(parseGrant('models/')).toEqual({ bucket: 'models', prefix: '' });
    expect(parseGrant('models/llama/7b/')).toEqual({ bucket: 'models', prefix: 'llama/7b/' });
    expect(parseGrant('models/llama')).toEqual({ bucket: 'models', prefix: 'llama/' });
    expect(parseGrant('/llama/')).toContain('is not a bucket name');
  });
});

describe('readAccessKeysFile', () => {
  it('reads the file, and names it when it cannot', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-s3-keys-'));
    try {
      const file = path.join(dir, 'keys.json');
      fs.writeFileSync(file, keysFile({ accessKeyId: 'AKIAGRANARYREADER01', secretAccessKey: SECRET, grants: ['models'] }));
      expect((await readAccessKeysFile(file)).secretOf('AKIAGRANARYREADER01')).toBe(SECRET);
      await expect(readAccessKeysFile(path.join(dir, 'missing.json'))).rejects.toThrow(`cannot read the S3 gateway access keys file ${path.join(dir, 'missing.json')} (ENOENT): mount the access keys Secret there`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
