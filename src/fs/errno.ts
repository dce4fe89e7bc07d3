// From object-store failures to the errno an application sees, logged with the path and cause.
import { constants as osConstants } from 'node:os';
import type { Logger } from '../log/logger';
import { ObjectStoreError, type ObjectStoreErrorCode } from '../objectstore/errors';
import { FuseError } from './fuse/operations';

/** errno values by name (ENOENT, EROFS...), from the platform. */
export const Errno = osConstants.errno;

const errnoByCode: Record<ObjectStoreErrorCode, number> = {
  NotFound: Errno.ENOENT,
  AccessDenied: Errno.EACCES,
  Unavailable: Errno.EIO,
  InvalidArgument: Errno.EINVAL,
  // The bucket vanished, the object changed under an open handle, or an unknown failure: nothing the application can fix.
  NoSuchBucket: Errno.EIO,
  PreconditionFailed: Errno.EIO,
  Internal: Errno.EIO,
};

/** The errno for any failure: a FuseError's own, an ObjectStoreError's mapped one, EIO otherwise. */
export function errnoOf(error: unknown): number {
  if (error instanceof FuseError) return error.errno;
  if (error instanceof ObjectStoreError) return errnoByCode[error.code];
  return Errno.EIO;
}

/**
 * Turns a failure of `operation` on `path` into the FuseError to answer with, logging it: NotFound
 * at debug (applications probe for missing files all the time), everything else at warn with the cause.
 */
export function toFuseError(error: unknown, operation: string, path: string, logger: Logger): FuseError {
  if (error instanceof FuseError) return error;
  const errno = errnoOf(error);
  const code = error instanceof ObjectStoreError ? error.code : undefined;
  if (errno === Errno.ENOENT) logger.debug({ op: operation, path, code }, 'not found');
  else logger.warn({ op: operation, path, code, errno, err: error }, 'filesystem operation failed');
  return new FuseError(errno, `${operation} ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}
