import { AttrCache, TimesCache } from './attr-cache';

describe('AttrCache', () => {
  it('returns an entry until its TTL passes', () => {
    let now = 1000;
    const cache = new AttrCache(500, () => now);
    cache.set('a', { kind: 'file', size: 1, mtimeMs: 0 });
    now = 1499;
    expect(cache.get('a')?.size).toBe(1);
    now = 1500;
    expect(cache.get('a')).toBeUndefined();
  });

  it('drops the oldest entry past its capacity', () => {
    const cache = new AttrCache(1000, () => 0, 2);
    cache.set('a', { kind: 'file', size: 1, mtimeMs: 0 });
    cache.set('b', { kind: 'file', size: 2, mtimeMs: 0 });
    cache.set('c', { kind: 'file', size: 3, mtimeMs: 0 });
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('c')?.size).toBe(3);
  });

  it('caches nothing with a TTL of 0', () => {
    const cache = new AttrCache(0);
    cache.set('a', { kind: 'file', size: 1, mtimeMs: 0 });
    expect(cache.get('a')).toBeUndefined();
  });
});

describe('AttrCache.deleteTree', () => {
  it('forgets a path and everything below it, not its siblings', () => {
    const cache = new AttrCache(1000, () => 0);
    for (const path of ['a', 'a/b', 'a/b/c', 'ab']) cache.set(path, { kind: 'file', size: 1, mtimeMs: 0 });
    cache.deleteTree('a');
    expect(['a', 'a/b', 'a/b/c', 'ab'].map((path) => cache.get(path) !== undefined)).toEqual([false, false, false, true]);
  });
});

describe('TimesCache', () => {
  it('binds times to the first ETag seen and drops them when the object changes', () => {
    const times = new TimesCache();
    times.set('f', { atimeMs: 1, mtimeMs: 2 });
    expect(times.get('f', undefined)).toMatchObject({ mtimeMs: 2 }); // still being written
    expect(times.get('f', 'v1')).toMatchObject({ mtimeMs: 2, etag: 'v1' });
    expect(times.get('f', 'v1')?.mtimeMs).toBe(2);
    expect(times.get('f', 'v2')).toBeUndefined();
    expect(times.get('f', 'v1')).toBeUndefined();
  });

  it('follows renames and forgets deleted trees', () => {
    const times = new TimesCache();
    times.set('d/x', { atimeMs: 1, mtimeMs: 1 });
    times.set('e', { atimeMs: 9, mtimeMs: 9 });
    times.rename('d', 'e');
    expect(times.get('e/x', undefined)?.mtimeMs).toBe(1);
    expect(times.get('e', undefined)).toBeUndefined();
    expect(times.get('d/x', undefined)).toBeUndefined();
    times.deleteTree('e');
    expect(times.get('e/x', undefined)).toBeUndefined();
  });

  it('drops the oldest entry past its capacity', () => {
    const times = new TimesCache(1);
    times.set('a', { atimeMs: 1, mtimeMs: 1 });
    times.set('b', { atimeMs: 2, mtimeMs: 2 });
    expect(times.get('a', undefined)).toBeUndefined();
    expect(times.get('b', undefined)?.mtimeMs).toBe(2);
  });
});
