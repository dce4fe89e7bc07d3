import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import versions from '../tools/versions.json';

/** A test tool pinned in e2e/tools/versions.json. */
export type ToolName = keyof typeof versions;

/** A test tool installed from PyPI (a "pypi" entry in versions.json): a folder of Python packages, not a program. */
export type PythonToolName = { [name in ToolName]: (typeof versions)[name] extends { pypi: string } ? name : never }[ToolName];

/** Where e2e/tools/install.sh put `file` of a tool's folder; throws with the fix when it is not there. */
function installed(name: ToolName, file: string): string {
  const dir = process.env.GRANARY_TOOLS_DIR ?? path.join(os.homedir(), '.cache', 'granary', 'tools');
  const folder = path.join(dir, `${name}-${versions[name].version}`);
  if (!fs.existsSync(path.join(folder, file))) {
    throw new Error(`test tool ${name} ${versions[name].version} is not installed at ${folder}: run 'npm run tools' (npm test does it first)`);
  }
  return folder;
}

/** The path of a pinned test tool installed by e2e/tools/install.sh; throws with the fix when it is missing. */
export function toolPath(name: ToolName): string {
  return path.join(installed(name, name), name);
}

/**
 * The folder of a pinned PyPI tool and its pinned dependencies (e2e/tools/install.sh's `pip install --target`), to
 * run Python with as PYTHONPATH; throws with the fix when it is missing.
 */
export function pythonToolPath(name: PythonToolName): string {
  // install.sh writes .requirements last, so a folder without it is not a finished install.
  return installed(name, '.requirements');
}
