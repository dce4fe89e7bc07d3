// Files open for writing in this mount, by path: a file created here exists for lookup and readdir
// at once, with the size written so far, although the store only has it after its first flush.
import type { PathStat } from './attr-cache';
import { parentPath } from './inodes';
import type { OpenFile } from './open-file';

/** One writer of a path and when it was opened (the file's mtime until the store has it). */
interface Writer {
  file: OpenFile;
  openedAtMs: number;
}

/** The registry of open write handles by path, so the namespace sees files before the store does. */
export class WritingFiles {
  private readonly byPath = new Map<string, Writer[]>();

  /** Records `file` as writing `path`. */
  add(path: string, file: OpenFile, openedAtMs: number): void {
    const writers = this.byPath.get(path) ?? [];
    writers.push({ file, openedAtMs });
    this.byPath.set(path, writers);
  }

  /** Forgets `file` as a writer of `path` (released). */
  remove(path: string, file: OpenFile): void {
    const writers = this.byPath.get(path)?.filter((writer) => writer.file !== file) ?? [];
    if (writers.length > 0) this.byPath.set(path, writers);
    else this.byPath.delete(path);
  }

  /** The write handles open on `path`. */
  filesOf(path: string): OpenFile[] {
    return (this.byPath.get(path) ?? []).map((writer) => writer.file);
  }

  /** The write handles open on `path` or below it (a directory about to be renamed). */
  filesUnder(path: string): OpenFile[] {
    const below = path === '' ? '' : `${path}/`;
    return [...this.byPath].filter(([key]) => key === path || key.startsWith(below)).flatMap(([, writers]) => writers.map((writer) => writer.file));
  }

  /** What `path` is while it is being written: a file as large as its largest writer sees it. */
  stat(path: string): PathStat | undefined {
    const writers = this.byPath.get(path);
    if (!writers || writers.length === 0) return undefined;
    return {
      kind: 'file',
      size: Math.max(...writers.map((writer) => writer.file.size)),
      mtimeMs: Math.min(...writers.map((writer) => writer.openedAtMs)),
    };
  }

  /** The files being written directly in directory `path`, by name (for readdir). */
  childrenOf(path: string): Map<string, PathStat> {
    const children = new Map<string, PathStat>();
    for (const key of this.byPath.keys()) {
      if (key === path || parentPath(key) !== path) continue;
      const stat = this.stat(key);
      if (stat) children.set(key.slice(path === '' ? 0 : path.length + 1), stat);
    }
    return children;
  }

  /** Whether anything is being written at or below directory `path` (it is not empty). */
  hasAnyUnder(path: string): boolean {
    return this.filesUnder(path).length > 0;
  }

  /** Moves the writers of `from` (and below it) to `to`, after a rename. */
  rename(from: string, to: string): void {
    const below = `${from}/`;
    for (const [key, writers] of [...this.byPath]) {
      if (key !== from && !key.startsWith(below)) continue;
      this.byPath.delete(key);
      const moved = to + key.slice(from.length);
      this.byPath.set(moved, [...(this.byPath.get(moved) ?? []), ...writers]);
    }
  }

  /** Forgets every writer of `path` (unlinked while open). */
  drop(path: string): void {
    this.byPath.delete(path);
  }
}
