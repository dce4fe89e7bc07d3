import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLogger } from '../../log/logger';
import { openAccessKeys } from './keys-reloader';

const SECRET_A = 'secret-a-0123456789abcdef';
const SECRET_B = 'secret-b-0123456789abcdef';
const keysJson = (id: string, secret: string) => JSON.stringify({ keys: [{ accessKeyId: id, secretAccessKey: secret, grants: ['models'] }] });

describe('openAccessKeys', () => {
  let dir: string;
  let file: string;
  let lines: string[];
  const logger = () => createLogger({ format: 'json', level: 'info', name: 'test', destination: { write: (line) => void lines.push(line) } });

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-keys-'));
    file = path.join(dir, 'keys.json');
    lines = [];
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Replaces the file as the kubelet updates a Secret: a new file renamed over the old one. */
  const replace = (text: string) => {
    fs.writeFileSync(`${file}.new`, text);
    fs.renameSync(`${file}.new`, file);
  };

  it('puts a rewritten file in force at the next check: a new key works, a removed one no longer does', async () => {
    fs.writeFileSync(file, keysJson('GRANARYKEYAAAAAAAAA1', SECRET_A));
    const keys = await openAccessKeys(file, logger(), 3_600_000);
    try {
      expect(keys.current.secretOf('GRANARYKEYAAAAAAAAA1')).toBe(SECRET_A);
      await keys.check();
      expect(lines.join('')).not.toMatch(/changed/); // unchanged: not read again
      replace(keysJson('GRANARYKEYBBBBBBBBB2', SECRET_B));
      await keys.check();
      expect(keys.current.secretOf('GRANARYKEYBBBBBBBBB2')).toBe(SECRET_B);
      expect(keys.current.secretOf('GRANARYKEYAAAAAAAAA1')).toBeUndefined();
      expect(lines.join('')).toMatch(/access keys file changed: the new version is in force now/);
    } finally {
      keys.close();
    }
  });

  it('keeps the keys in force when the new file is broken or gone, logging it without a secret', async () => {
    fs.writeFileSync(file, keysJson('GRANARYKEYAAAAAAAAA1', SECRET_A));
    const keys = await openAccessKeys(file, logger(), 3_600_000);
    try {
      replace(`{"keys": [{"accessKeyId": "GRANARYKEYBBBBBBBBB2", "secretAccessKey": "${SECRET_B}", "grants": []`);
      await keys.check();
      expect(keys.current.secretOf('GRANARYKEYAAAAAAAAA1')).toBe(SECRET_A);
      fs.rmSync(file);
      await keys.check();
      expect(keys.current.secretOf('GRANARYKEYAAAAAAAAA1')).toBe(SECRET_A);
      const logged = lines.join('');
      expect(logged).toMatch(/changed but cannot be used; what was read before stays in force/);
      expect(logged).toMatch(/a file is gone; what was read before stays in force/);
      expect(logged).not.toContain(SECRET_B);
      expect(logged).not.toContain(SECRET_A);
    } finally {
      keys.close();
    }
  });

  it('refuses to start without a usable file, saying what to fix', async () => {
    await expect(openAccessKeys(path.join(dir, 'missing.json'), logger())).rejects.toThrow(/mount the access keys Secret there/);
  });
});
