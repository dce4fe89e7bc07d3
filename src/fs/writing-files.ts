// Files open for writing in this mount, by path: a file created here exists for lookup and readdir
// at once, with the size written so far, although the store only has it after its first flush. A writer
// stays here after RELEASE until what its release publishes is in the store (RELEASE is asynchronous:
// close(2) does not wait for it), so this mount never shows the old size in between.
import type { PathStat } from './attr-cache';
import { parentPath } from './inodes';
import type { OpenFile } from './open-file';

/** One writer of a path and when it was opened (the file's mtime until the store has it). */
interface Writer {
  file: OpenFile;
  openedAtMs: number;
  /** Set once the writer is released: resolves when its release has published and it left this registry. */
  released?: Promise<void>;
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

  /**
   * Marks `file` as released: it stays visible (stat, listings) until `published` settles, then it is forgotten
   * and `forgotten(path)` runs with the path it was at (after renames), if it was still here. Waiters (releasesOf)
   * resume only after both, so they see the store's new object.
   */
  release(file: OpenFile, published: Promise<unknown>, forgotten: (path: string) => void): Promise<void> {
    const writer = this.find(file);
    const done = published.then(
      () => this.forget(file, forgotten),
      () => this.forget(file, forgotten),
    );
    if (writer) writer.released = done;
    return done;
  }

  /** The write handles open on `path` (released ones, whose publish is pending, excluded). */
  filesOf(path: string): OpenFile[] {
    return (this.byPath.get(path) ?? []).filter((writer) => !writer.released).map((writer) => writer.file);
  }

  /** The write handles open on `path` or below it (a directory about to be renamed); released ones excluded. */
  filesUnder(path: string): OpenFile[] {
    return this.writersUnder(path).filter((writer) => !writer.released).map((writer) => writer.file);
  }

  /** Resolves once the releases of `path`'s writers that are publishing now have finished (a rename, unlink or open waits). */
  async releasesOf(path: string): Promise<void> {
    await Promise.all((this.byPath.get(path) ?? []).map((writer) => writer.released));
  }

  /** Resolves once the releases publishing now at or below `path` have finished (a directory rename waits). */
  async releasesUnder(path: string): Promise<void> {
    await Promise.all(this.writersUnder(path).map((writer) => writer.released));
  }

  /** Every release still publishing (at unmount). */
  async allReleases(): Promise<void> {
    await Promise.all([...this.byPath.values()].flat().map((writer) => writer.released));
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

  /** Whether anything is being written (or published at release) at or below directory `path` (it is not empty). */
  hasAnyUnder(path: string): boolean {
    return this.writersUnder(path).length > 0;
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

  private writersUnder(path: string): Writer[] {
    const below = path === '' ? '' : `${path}/`;
    return [...this.byPath].filter(([key]) => key === path || key.startsWith(below)).flatMap(([, writers]) => writers);
  }

  private find(file: OpenFile): Writer | undefined {
    for (const writers of this.byPath.values()) {
      const writer = writers.find((candidate) => candidate.file === file);
      if (writer) return writer;
    }
    return undefined;
  }

  /** Forgets `file` wherever it is now (renames move writers); runs `forgotten` with that path. */
  private forget(file: OpenFile, forgotten: (path: string) => void): void {
    for (const [path, writers] of this.byPath) {
      if (!writers.some((writer) => writer.file === file)) continue;
      const rest = writers.filter((writer) => writer.file !== file);
      if (rest.length > 0) this.byPath.set(path, rest);
      else this.byPath.delete(path);
      forgotten(path);
      return;
    }
  }
}
