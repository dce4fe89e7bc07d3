import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** The package name and version, read from package.json so a release needs one edit. */
function readPackage(): { name: string; version: string } {
  // From src/ (ts-jest) or dist/src/ (built), package.json sits one or two levels up.
  for (const up of ['..', '../..']) {
    try {
      return JSON.parse(readFileSync(path.join(__dirname, up, 'package.json'), 'utf8')) as { name: string; version: string };
    } catch {
      // Try the next level.
    }
  }
  throw new Error('granary: package.json not found next to the installed code');
}

/** granary's version, from package.json. */
export const version = readPackage().version;
