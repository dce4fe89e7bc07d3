import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRegistry } from './registry';

describe('createRegistry', () => {
  it("exports every process metric the README names, under the granary_ prefix", async () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    const named = [...new Set(readme.match(/granary_(?:process|nodejs)_[a-z_]+/g) ?? [])];
    expect(named.length).toBeGreaterThanOrEqual(3);
    const families = (await createRegistry().metrics()).split('\n').filter((line) => line.startsWith('# TYPE ')).map((line) => line.split(' ')[2]);
    for (const name of named) expect(families).toContain(name);
  });
});
