import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** A build context with its .dockerignore: what `docker build` would send for COPY. */
export interface BuildContext {
  readonly dir: string;
  /** True when a path (relative to dir, '/'-separated) is left out by .dockerignore. */
  ignored(relative: string): boolean;
}

/**
 * Reads dir/.dockerignore the way Docker does for the patterns it uses: each pattern (a path with
 * * and ? globs, relative to the context's root) leaves out what it matches and everything under it.
 * Exceptions (!) and ** are refused rather than half-supported.
 */
export async function readBuildContext(dir: string): Promise<BuildContext> {
  let text = '';
  try {
    text = await fs.readFile(path.join(dir, '.dockerignore'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const patterns = text.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#')).map((line) => {
    if (line.startsWith('!') || line.includes('**')) {
      throw new Error(`.dockerignore pattern '${line}': the image builder (e2e/cluster/images) does not replay exceptions or **`);
    }
    const glob = line.replace(/^\/+|\/+$/g, '').split('').map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
    return new RegExp(`^${glob}(/|$)`);
  });
  return { dir, ignored: (relative) => patterns.some((pattern) => pattern.test(relative)) };
}

/** Copies context sources to a destination with COPY's rules: a directory's contents go into the destination. */
export async function copyFromContext(context: BuildContext, sources: readonly string[], destination: string): Promise<void> {
  for (const source of sources) {
    if (/[*?[]/.test(source)) throw new Error(`COPY ${source}: the image builder does not expand globs`);
    const from = path.join(context.dir, source);
    const stat = await fs.lstat(from);
    const to = stat.isDirectory() || !destination.endsWith('/') ? destination : path.join(destination, path.basename(source));
    await fs.mkdir(stat.isDirectory() ? to : path.dirname(to), { recursive: true });
    await fs.cp(from, to, {
      recursive: true,
      verbatimSymlinks: true,
      filter: (file) => !context.ignored(path.relative(context.dir, file).split(path.sep).join('/')),
    });
  }
}

/** A digest of the files COPY would take from the context for these sources (paths, modes and contents). */
export async function contextDigest(context: BuildContext, sources: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  const visit = async (relative: string): Promise<void> => {
    if (context.ignored(relative)) return;
    const file = path.join(context.dir, relative);
    const stat = await fs.lstat(file);
    hash.update(`${relative}\0${stat.mode}\0`);
    if (stat.isDirectory()) {
      for (const entry of (await fs.readdir(file)).sort()) await visit(`${relative}/${entry}`);
    } else if (stat.isSymbolicLink()) {
      hash.update(await fs.readlink(file));
    } else {
      hash.update(await fs.readFile(file));
    }
  };
  for (const source of sources) await visit(source);
  return hash.digest('hex');
}
