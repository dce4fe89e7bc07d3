import * as fs from 'node:fs';
import * as path from 'node:path';

/** Path of the built `granary` CLI; throws with the fix when the build is missing or older than src/. */
export function builtCli(): string {
  const root = path.join(__dirname, '..', '..');
  const cli = path.join(root, 'dist', 'src', 'cli', 'index.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run 'npm run build' first (npm test does)`);
  return cli;
}
