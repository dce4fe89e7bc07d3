import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { isObjectStoreError, type ObjectStoreErrorCode } from './errors';
import { LocalDirStore, STATE_DIR, TEMP_PREFIX } from './local-dir';

async function codeOf(promise: Promise<unknown>): Promise<ObjectStoreErrorCode | string> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  return isObjectStoreError(error) ? error.code : `not an ObjectStoreError: ${String(error)}`;
}

describe('LocalDirStore', () => {
  let parent: string;
  let root: string;
  let store: LocalDirStore;
  beforeEach(() => {
    parent = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-localdir-'));
    root = path.join(parent, 'bucket');
    fs.mkdirSync(root);
    store = new LocalDirStore(root);
  });
  afterEach(() => fs.rmSync(parent, { recursive: true, force: true }));

  it.each([
    ['empty', ''],
    ['parent segment', '../escape.txt'],
    ['parent segment inside', 'a/../../escape.txt'],
    ['absolute', '/etc/passwd'],
    ['dot segment', 'a/./b'],
    ['empty segment', 'a//b'],
    ['NUL', 'a\0b'],
    ['reserved state folder', `${STATE_DIR}/meta/x`],
    ['reserved state folder itself', STATE_DIR],
    ['reserved temporary name', `a/${TEMP_PREFIX}123`],
    ['name too long', `${'x'.repeat(256)}`],
    ['key too long', `${'abc/'.repeat(300)}x`],
  ])('rejects a key with %s (InvalidArgument), on every operation', async (_why, key) => {
    expect(await codeOf(store.head(key))).toBe('InvalidArgument');
    expect(await codeOf(store.get(key))).toBe('InvalidArgument');
    expect(await codeOf(store.put(key, Buffer.from('x')))).toBe('InvalidArgument');
    expect(await codeOf(store.delete(key))).toBe('InvalidArgument');
    expect(await codeOf(store.createMultipartUpload(key))).toBe('InvalidArgument');
    expect(await codeOf(store.copy('a', key))).not.toBe('Internal');
    expect(fs.readdirSync(parent)).toEqual(['bucket']);
  });

  it('accepts keys S3 users write: spaces, unicode, dots inside names, a trailing slash marker', async () => {
    for (const key of ['a b/c d.txt', 'données/été.csv', 'x/..hidden', 'x/.dotfile', 'y/z/']) {
      await store.put(key, Buffer.alloc(0));
      expect((await store.head(key)).key).toBe(key);
    }
    expect(fs.existsSync(path.join(root, 'données', 'été.csv'))).toBe(true);
    expect(fs.statSync(path.join(root, 'y', 'z')).isDirectory()).toBe(true);
  });

  it('keeps the folder plain: files at their keys, state hidden from listings', async () => {
    await store.put('a/b.txt', Buffer.from('hello'), { metadata: { owner: 'me' } });
    expect(fs.readFileSync(path.join(root, 'a', 'b.txt'), 'utf8')).toBe('hello');
    fs.writeFileSync(path.join(root, 'a', `${TEMP_PREFIX}leftover`), 'partial');
    const page = await store.list({ prefix: '' });
    expect(page.objects.map((o) => o.key)).toEqual(['a/', 'a/b.txt']);
    expect((await store.list({ prefix: '', delimiter: '/' })).commonPrefixes).toEqual(['a/']);
  });

  it('sees files written by other tools, and drops metadata that belongs to older content', async () => {
    await store.put('f.txt', Buffer.from('one'), { metadata: { version: '1' } });
    expect((await store.head('f.txt')).metadata).toEqual({ version: '1' });
    fs.rmSync(path.join(root, 'f.txt'));
    fs.writeFileSync(path.join(root, 'f.txt'), 'written by hand');
    expect(await store.head('f.txt')).toMatchObject({ size: 15, metadata: {} });
  });

  it('leaves nothing behind when a put fails midway', async () => {
    await store.put('keep.txt', Buffer.from('old'));
    const failing = new Readable({
      read() {
        this.push(Buffer.from('partial'));
        this.destroy(new Error('disk pulled'));
      },
    });
    expect(await codeOf(store.put('keep.txt', failing))).toBe('Internal');
    expect(fs.readdirSync(root).filter((name) => name.startsWith(TEMP_PREFIX))).toEqual([]);
    expect(fs.readFileSync(path.join(root, 'keep.txt'), 'utf8')).toBe('old');
    const aborted = new AbortController();
    aborted.abort();
    await expect(store.put('new.txt', Buffer.from('x'), { signal: aborted.signal })).rejects.toThrow();
    expect(fs.existsSync(path.join(root, 'new.txt'))).toBe(false);
  });

  it('reports a file/folder clash as InvalidArgument, not Internal', async () => {
    await store.put('clash', Buffer.from('file'));
    expect(await codeOf(store.put('clash/inside.txt', Buffer.from('x')))).toBe('InvalidArgument');
    await store.put('dir/inner.txt', Buffer.from('x'));
    expect(await codeOf(store.put('dir', Buffer.from('x')))).toBe('InvalidArgument');
    expect(await codeOf(store.head('dir'))).toBe('NotFound');
  });

  it('keeps a marker folder that still holds files when the marker is deleted', async () => {
    await store.put('d/file', Buffer.from('x'));
    await store.delete('d/');
    expect((await store.head('d/file')).size).toBe(1);
  });

  it('maps a missing root to NoSuchBucket and an unreadable file to AccessDenied', async () => {
    await store.put('secret.txt', Buffer.from('x'));
    if (process.getuid?.() !== 0) {
      fs.chmodSync(path.join(root, 'secret.txt'), 0o000);
      expect(await codeOf(store.get('secret.txt'))).toBe('AccessDenied');
    }
    fs.rmSync(root, { recursive: true, force: true });
    expect(await codeOf(store.checkBucket())).toBe('NoSuchBucket');
    expect(await codeOf(store.head('x'))).toBe('NoSuchBucket');
    expect(await codeOf(store.list({ prefix: '' }))).toBe('NoSuchBucket');
    expect(await codeOf(store.delete('x'))).toBe('NoSuchBucket');
    await expect(store.head('x')).rejects.toThrow(/does not exist; create it/);
  });

  it('does not list outside the root for odd prefixes', async () => {
    fs.writeFileSync(path.join(parent, 'outside.txt'), 'x');
    expect((await store.list({ prefix: '../' })).objects).toEqual([]);
    expect((await store.list({ prefix: '/' })).objects).toEqual([]);
    expect((await store.list({ prefix: `${STATE_DIR}/` })).objects).toEqual([]);
  });

  it('gives a stable ETag until the content is replaced', async () => {
    const first = await store.put('e.txt', Buffer.from('a'));
    expect((await store.head('e.txt')).etag).toBe(first.etag);
    const second = await store.put('e.txt', Buffer.from('a'));
    expect(second.etag).not.toBe(first.etag);
  });
});
