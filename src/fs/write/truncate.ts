// setattr(size) on a file with no open write handle: the object itself is rewritten at the new size.
import type { Logger } from '../../log/logger';
import type { ObjectInfo, ObjectStore } from '../../objectstore/store';
import { writeFailure } from './errors';
import { StagingFile } from './staging-file';
import type { WritePath } from './write-path';

/** What truncateObject() needs. */
export interface TruncateObjectOptions {
  store: ObjectStore;
  key: string;
  /** The object as it is now. */
  existing: ObjectInfo;
  /** The new size in bytes. */
  size: number;
  writePath: WritePath;
  logger: Logger;
}

/**
 * Truncates (or extends with zeros) an existing object to `size` bytes and returns the new object once it is
 * durable: 0 is an empty PUT; any other size goes through a staging file that fetches only the bytes it keeps.
 * Failures are logged and thrown as FuseError (EIO, or ENOSPC when the staging directory is full).
 */
export async function truncateObject(options: TruncateObjectOptions): Promise<ObjectInfo> {
  const { store, key, existing, size, logger } = options;
  if (size === existing.size) return existing;
  try {
    if (size === 0) return await store.put(key, Buffer.alloc(0));
    const file = new StagingFile(options);
    try {
      await file.truncate(size);
      const info = await file.upload();
      return info ?? existing;
    } finally {
      await file.close();
    }
  } catch (error) {
    throw writeFailure(error, 'truncate', key, logger);
  }
}
