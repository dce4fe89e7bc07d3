// Opening a regular file: the seam between the filesystem (names, handles, errors) and the read and write
// paths (src/fs/read/, src/fs/write/) whose handles implement OpenFile.
import type { Logger } from '../log/logger';
import type { ObjectInfo, ObjectStore } from '../objectstore/store';
import type { PathStat } from './attr-cache';
import { Errno } from './errno';
import { FuseError } from './fuse/operations';
import type { OpenFile } from './open-file';
import type { ReadPath } from './read/read-path';
import { createWriteHandle, truncateObject, WriteHandle, type WritePath } from './write';

/** A file to open: its object key, its path in the volume (for logs) and what it is now. */
export interface FileToOpen {
  key: string;
  path: string;
  /** The object as stat saw it; absent when the file is new (create). */
  existing?: PathStat;
}

/** How a file is opened for writing (from the open(2) flags). */
export interface WriteMode {
  /** O_TRUNC (or a new file): start empty. */
  truncate: boolean;
  /** O_APPEND: every write lands at the end. */
  append: boolean;
}

/** Opens files for the filesystem (an OpenFile over the read or the write path) and truncates them; one per mount. */
export interface FileOpener {
  /** A handle that reads the object version `file.existing` describes. */
  openRead(file: FileToOpen): OpenFile;
  /** A handle that writes `file.key`; the object appears (or changes) at its first flush or fsync. */
  openWrite(file: FileToOpen, mode: WriteMode): OpenFile;
  /** truncate(2)/ftruncate(2) to `size`: through `open` when a write handle of the file is open, else on the object itself. */
  truncate(file: FileToOpen, size: number, open: OpenFile | undefined): Promise<void>;
  /** At unmount: stops fetches in flight and drops caches. */
  close(): void;
}

/** The mount's read and write paths, which FileOpener hands files to. */
export interface ObjectFileOpenerOptions {
  store: ObjectStore;
  readPath: ReadPath;
  writePath: WritePath;
  logger: Logger;
}

/** FileOpener over the block reader (ReadHandle) and the write path (WriteHandle, truncateObject). */
export class ObjectFileOpener implements FileOpener {
  constructor(private readonly options: ObjectFileOpenerOptions) {}

  openRead(file: FileToOpen): OpenFile {
    const existing = this.objectOf(file);
    if (!existing) throw new FuseError(Errno.ENOENT, `open ${file.path}: no object version to read`);
    return this.options.readPath.open({ key: file.key, etag: existing.etag, size: existing.size });
  }

  openWrite(file: FileToOpen, mode: WriteMode): OpenFile {
    const { store, writePath, logger } = this.options;
    const existing = this.objectOf(file);
    return createWriteHandle({ store, key: file.key, ...(existing && { existing }), truncate: mode.truncate, append: mode.append, writePath, logger });
  }

  async truncate(file: FileToOpen, size: number, open: OpenFile | undefined): Promise<void> {
    if (open instanceof WriteHandle) return open.truncate(size);
    const existing = this.objectOf(file);
    if (!existing) throw new FuseError(Errno.ENOENT, `truncate ${file.path}: no object`);
    const { store, writePath, logger } = this.options;
    await truncateObject({ store, key: file.key, existing, size, writePath, logger });
  }

  close(): void {
    this.options.readPath.close();
  }

  /** The object a stat describes, in the store's terms; undefined for a new file or one not yet uploaded. */
  private objectOf(file: FileToOpen): ObjectInfo | undefined {
    const stat = file.existing;
    if (!stat || stat.kind !== 'file' || stat.etag === undefined) return undefined;
    return { key: file.key, size: stat.size, etag: stat.etag, lastModified: new Date(stat.mtimeMs) };
  }
}
