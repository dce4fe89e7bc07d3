import { ObjectStoreError } from '../../objectstore/errors';
import { S3Error } from './error-reply';
import { conditionStatus, objectStoreFailure } from './object-reply';

const object = { etag: 'abc123', lastModified: new Date('2026-12-01T10:00:00.500Z') };
const before = new Date('2026-12-01T09:59:59Z');
const same = new Date('2026-12-01T10:00:00Z'); // HTTP dates have whole seconds
const after = new Date('2026-12-01T10:00:01Z');

describe('conditionStatus', () => {
  it('goes on without conditions, or with conditions the object meets', () => {
    expect(conditionStatus({}, object)).toBeUndefined();
    expect(conditionStatus({ ifMatch: '"abc123"' }, object)).toBeUndefined();
    expect(conditionStatus({ ifMatch: '"x", W/"abc123"' }, object)).toBeUndefined();
    expect(conditionStatus({ ifMatch: '*' }, object)).toBeUndefined();
    expect(conditionStatus({ ifNoneMatch: '"other"' }, object)).toBeUndefined();
    expect(conditionStatus({ ifUnmodifiedSince: same }, object)).toBeUndefined();
    expect(conditionStatus({ ifModifiedSince: before }, object)).toBeUndefined();
  });

  it('answers 412 for If-Match or If-Unmodified-Since the object fails', () => {
    expect(conditionStatus({ ifMatch: '"other"' }, object)).toBe(412);
    expect(conditionStatus({ ifUnmodifiedSince: before }, object)).toBe(412);
  });

  it('answers 304 for If-None-Match or If-Modified-Since the object fails', () => {
    expect(conditionStatus({ ifNoneMatch: '"abc123"' }, object)).toBe(304);
    expect(conditionStatus({ ifNoneMatch: '*' }, object)).toBe(304);
    expect(conditionStatus({ ifModifiedSince: same }, object)).toBe(304);
    expect(conditionStatus({ ifModifiedSince: after }, object)).toBe(304);
  });

  it('lets a tag condition decide over its date (S3: If-Match true and If-Unmodified-Since false is 200)', () => {
    expect(conditionStatus({ ifMatch: '"abc123"', ifUnmodifiedSince: before }, object)).toBeUndefined();
    expect(conditionStatus({ ifNoneMatch: '"other"', ifModifiedSince: after }, object)).toBeUndefined();
    expect(conditionStatus({ ifMatch: '"abc123"', ifNoneMatch: '"abc123"' }, object)).toBe(304);
  });
});

describe('objectStoreFailure', () => {
  it("answers the origin's failures with S3's codes, naming the object", () => {
    expect(objectStoreFailure(new ObjectStoreError('NotFound', 'gone'), 'b', 'k')).toMatchObject({ code: 'NoSuchKey', status: 404, message: expect.stringContaining('b/k') });
    expect(objectStoreFailure(new ObjectStoreError('NoSuchBucket', 'gone'), 'b', 'k')).toMatchObject({ code: 'NoSuchBucket', status: 404 });
    expect(objectStoreFailure(new ObjectStoreError('AccessDenied', 'no'), 'b', 'k')).toMatchObject({ code: 'AccessDenied', status: 403 });
    expect(objectStoreFailure(new Error('socket hang up'), 'b', 'k')).toMatchObject({ code: 'ServiceUnavailable', status: 503, message: expect.stringContaining('retry') });
    const own = new S3Error('InvalidRange', 'past the end');
    expect(objectStoreFailure(own, 'b', 'k')).toBe(own);
  });
});
