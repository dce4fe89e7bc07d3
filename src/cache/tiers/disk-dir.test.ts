import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diskDirProblem } from './disk-dir';

let base: string;
beforeEach(() => (base = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-disk-dir-'))));
afterEach(() => fs.rmSync(base, { recursive: true, force: true }));

describe('diskDirProblem', () => {
  it('accepts a writable directory, and creates a missing one', async () => {
    expect(await diskDirProblem(base)).toBeUndefined();
    const missing = path.join(base, 'a', 'b');
    expect(await diskDirProblem(missing)).toBeUndefined();
    expect(fs.statSync(missing).isDirectory()).toBe(true);
  });

  it('says a regular file is not a directory, nor can hold one', async () => {
    const file = path.join(base, 'file');
    fs.writeFileSync(file, 'x');
    expect(await diskDirProblem(file)).toBe('it is a regular file, not a directory');
    expect(await diskDirProblem(path.join(file, 'cache'))).toMatch(/a parent of it is not a directory/);
  });

});
