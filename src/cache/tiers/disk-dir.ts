// Whether a path can be the disk tier's directory, said as the flag that names it: checked before the tier opens,
// so that a wrong --disk-dir stops the server with one line instead of a raw errno from deep in the open.
import { constants, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { errorCodeOf } from '../../util/error-code';

/** What kind of thing a non-directory is, in words. */
function kindOf(stats: Stats): string {
  if (stats.isFile()) return 'a regular file';
  if (stats.isSocket()) return 'a socket';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isBlockDevice() || stats.isCharacterDevice()) return 'a device';
  return 'not a directory';
}

/** Why `error` (from mkdir or access) keeps the tier from writing `at`, in words. */
function deniedBecause(error: unknown, at: string): string {
  switch (errorCodeOf(error)) {
    case 'EACCES':
    case 'EPERM':
      return `${at} is not writable by this process (uid ${process.getuid?.() ?? '?'})`;
    case 'EROFS':
      return `${at} is on a read-only file system`;
    default:
      return `${at} cannot be used: ${(error as Error).message}`;
  }
}

/**
 * The problem with `dir` as the disk tier's directory, or undefined when it is (or can be made) a writable
 * directory; a missing one is created, as the tier would. Never throws.
 */
export async function diskDirProblem(dir: string): Promise<string | undefined> {
  const found = await fsp.stat(dir).then(
    (stats) => ({ stats }),
    (error: unknown) => ({ error }),
  );
  if ('error' in found) {
    if (errorCodeOf(found.error) === 'ENOTDIR') return 'a parent of it is not a directory';
    if (errorCodeOf(found.error) !== 'ENOENT') return deniedBecause(found.error, 'it');
    try {
      await fsp.mkdir(dir, { recursive: true });
    } catch (error) {
      if (errorCodeOf(error) === 'ENOTDIR' || errorCodeOf(error) === 'EEXIST') return 'it does not exist and cannot be created: a parent of it is not a directory';
      return `it does not exist and cannot be created: ${deniedBecause(error, path.dirname(dir))}`;
    }
  } else if (!found.stats.isDirectory()) {
    return `it is ${kindOf(found.stats)}, not a directory`;
  }
  try {
    await fsp.access(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    return deniedBecause(error, 'it');
  }
  return undefined;
}
