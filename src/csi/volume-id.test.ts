import { formatVolumeId, parseVolumeId } from './volume-id';

describe('volume IDs', () => {
  it.each([
    ['models/llama-70b', { bucket: 'models', prefix: 'llama-70b/' }],
    ['models/team/a/b/', { bucket: 'models', prefix: 'team/a/b/' }],
    ['models', { bucket: 'models', prefix: '' }],
    ['my.bucket-1/x', { bucket: 'my.bucket-1', prefix: 'x/' }],
  ])('parses %s', (id, location) => {
    expect(parseVolumeId(id)).toEqual(location);
  });

  it('round-trips through formatVolumeId', () => {
    for (const id of ['models/llama-70b', 'models', 'a-b/c/d']) expect(formatVolumeId(parseVolumeId(id))).toBe(id);
  });

  it.each([
    ['', /required/],
    ['UPPER/x', /bucket name/],
    ['ab/x', /bucket name/],
    ['bucket//x', /must not start with \//],
    ['bucket/a//b', /empty path segments/],
    ['bucket/../etc', /\.\. segments/],
    ['bucket/a/./b', /\. or \.\. segments/],
    ['192.168.1.1/x', /IP address/],
    ['bucket/a\u0000b', /control characters/],
  ])('rejects %j with INVALID_ARGUMENT', (id, message) => {
    let error: unknown;
    try {
      parseVolumeId(id);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) });
  });
});
