import { constants } from 'node:os';
import { silentLogger } from '../log/logger';
import { ObjectStoreError } from '../objectstore/errors';
import { errnoOf, toFuseError } from './errno';
import { FuseError } from './fuse/operations';

const { errno } = constants;

describe('errno mapping', () => {
  it.each([
    ['NotFound', errno.ENOENT],
    ['AccessDenied', errno.EACCES],
    ['Unavailable', errno.EIO],
    ['InvalidArgument', errno.EINVAL],
    ['PreconditionFailed', errno.EIO],
    ['NoSuchBucket', errno.EIO],
    ['Internal', errno.EIO],
  ] as const)('%s -> %d', (code, expected) => {
    expect(errnoOf(new ObjectStoreError(code, 'x'))).toBe(expected);
  });

  it('keeps a FuseError and turns anything else into EIO', () => {
    expect(errnoOf(new FuseError(errno.EROFS))).toBe(errno.EROFS);
    expect(errnoOf(new Error('boom'))).toBe(errno.EIO);
    expect(errnoOf('weird')).toBe(errno.EIO);
  });

  it('logs the path and the cause, and keeps the cause on the FuseError', () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = silentLogger();
    logger.warn = ((object: Record<string, unknown>) => lines.push(object)) as typeof logger.warn;
    const cause = new ObjectStoreError('AccessDenied', 'denied');
    const error = toFuseError(cause, 'read', 'a/b.txt', logger);
    expect(error.errno).toBe(errno.EACCES);
    expect(error.cause).toBe(cause);
    expect(lines).toEqual([expect.objectContaining({ op: 'read', path: 'a/b.txt', code: 'AccessDenied', err: cause })]);
  });
});
