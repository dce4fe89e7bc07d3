import type { BlockRef } from './block';
import { BadBlockQuery, BlockPastEnd, blockQuery, parseBlockQuery } from './protocol';

const MiB = 1024 * 1024;
const REF: BlockRef = { endpoint: 'http://127.0.0.1:9000', bucket: 'models', key: 'llm/weights.bin', etag: 'abc', objectSize: 10 * MiB, index: 1, blockSize: 4 * MiB };

/** The query of REF with `changes` applied to its parameters. */
function query(changes: Record<string, string>): URLSearchParams {
  const params = new URLSearchParams(blockQuery(REF));
  for (const [name, value] of Object.entries(changes)) params.set(name, value);
  return params;
}

describe('parseBlockQuery', () => {
  it('reads back the block a query names', () => {
    expect(parseBlockQuery(new URLSearchParams(blockQuery(REF)), false)).toEqual({ ref: REF });
  });

  it('refuses a NUL in the key, naming the field and the position', () => {
    expect(() => parseBlockQuery(query({ key: 'llm/a\u0000b' }), false)).toThrow(new BadBlockQuery('"key" holds the control character U+0000 at position 5: no object store names anything with it'));
  });

  it('takes the other control characters in a key (S3 allows them), and refuses them in the bucket, ETag and endpoint', () => {
    expect(parseBlockQuery(query({ key: 'line\nbreak' }), false).ref.key).toBe('line\nbreak');
    for (const name of ['etag', 'endpoint']) {
      expect(() => parseBlockQuery(query({ [name]: 'a\u001fb' }), false)).toThrow(`"${name}" holds the control character U+001F at position 1`);
    }
    expect(() => parseBlockQuery(query({ bucket: 'mo\u0000dels' }), false)).toThrow(/"bucket" holds the control character U\+0000/);
  });

  it('refuses a bucket name no S3 bucket can have', () => {
    expect(() => parseBlockQuery(query({ bucket: 'Models_Old' }), false)).toThrow(/"bucket" is not a bucket name: it may only hold lower-case letters/);
  });

  it('tells a block past the end of the object (416) from other bad queries (400)', () => {
    const past = (() => {
      try {
        parseBlockQuery(query({ index: '3' }), false);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(past).toBeInstanceOf(BlockPastEnd);
    expect((past as Error).message).toBe('"index" must be between 0 and 2, got 3: block 3 lies past the end of a 10485760-byte object');
    expect(() => parseBlockQuery(query({ index: '-1' }), false)).toThrow(/"index" must be a whole number/);
    expect(() => parseBlockQuery(query({ index: '2' }), false)).not.toThrow();
  });
});
