import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import versions from '../tools/versions.json';

/** A test tool pinned in e2e/tools/versions.json. */
export type ToolName = keyof typeof versions;

/** The path of a pinned test tool installed by e2e/tools/install.sh; throws with the fix when it is missing. */
export function toolPath(name: ToolName): string {
  const dir = process.env.GRANARY_TOOLS_DIR ?? path.join(os.homedir(), '.cache', 'granary', 'tools');
  const file = path.join(dir, `${name}-${versions[name].version}`, name);
  if (!fs.existsSync(file)) {
    throw new Error(`test tool ${name} ${versions[name].version} is not installed at ${file}: run 'npm run tools' (npm test does it first)`);
  }
  return file;
}
