import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readTokenFile } from './token';

describe('readTokenFile', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'granary-token-'));
  const file = (name: string, text: string) => {
    const target = path.join(dir, name);
    writeFileSync(target, text);
    return target;
  };

  it('reads the token without surrounding whitespace', async () => {
    await expect(readTokenFile(file('ok', '  0123456789abcdef0123\n'))).resolves.toBe('0123456789abcdef0123');
  });

  it('refuses a short token without printing it', async () => {
    const error = await readTokenFile(file('short', 'tiny-secret\n')).catch((e: Error) => e);
    expect(String(error)).toMatch(/11 characters long; use at least 16/);
    expect(String(error)).not.toContain('tiny-secret');
  });

  it('refuses a token with inner whitespace', async () => {
    await expect(readTokenFile(file('spaces', '0123456789 abcdef0123'))).rejects.toThrow(/whitespace inside/);
  });

  it('names a missing file and the flag to fix', async () => {
    await expect(readTokenFile(path.join(dir, 'absent'))).rejects.toThrow(/absent \(ENOENT\).*--cache-token-file/);
  });
});
