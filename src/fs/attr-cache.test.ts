import { AttrCache } from './attr-cache';

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
