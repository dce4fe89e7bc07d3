// How write-path failures reach the application: ENOSPC and EFBIG as such, everything else as EIO, logged with the key.
import type { Logger } from '../../log/logger';
import { ObjectStoreError } from '../../objectstore/errors';
import { Errno } from '../errno';
import { FuseError } from '../fuse/operations';

/** Turns a failure of `operation` on `key` into the FuseError to answer with, logging the key and the cause. */
export function writeFailure(error: unknown, operation: string, key: string, logger: Logger): FuseError {
  if (error instanceof FuseError) return error;
  const systemCode = (error as NodeJS.ErrnoException | undefined)?.code;
  if (systemCode === 'ENOSPC') {
    logger.error({ op: operation, key, err: error }, 'the staging directory is full: free space there or raise its size');
    return new FuseError(Errno.ENOSPC, `${operation} ${key}: no space left in the staging directory`, { cause: error });
  }
  const code = error instanceof ObjectStoreError ? error.code : undefined;
  logger.error({ op: operation, key, code, err: error }, 'write to the object store failed; the application sees EIO');
  return new FuseError(Errno.EIO, `${operation} ${key}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}
