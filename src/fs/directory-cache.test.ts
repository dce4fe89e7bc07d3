import type { PathStat } from './attr-cache';
import { DirectoryCache, type DirectoryListing } from './directory-cache';

const file = (size: number): PathStat => ({ kind: 'file', size, mtimeMs: 0, etag: `e${size}` });
const listingOf = (names: Record<string, PathStat>, complete = true): DirectoryListing => ({ children: new Map(Object.entries(names)), complete });

describe('DirectoryCache', () => {
  let now: number;
  let cache: DirectoryCache;
  beforeEach(() => {
    now = 0;
    cache = new DirectoryCache(1000, () => now);
  });

  it('keeps a listing for ttlMs, and shares one listing between concurrent loads', async () => {
    const list = jest.fn(async () => listingOf({ a: file(1) }));
    const loads = await Promise.all(Array.from({ length: 16 }, () => cache.load('dir', list)));
    expect(list).toHaveBeenCalledTimes(1);
    expect(loads.every((listing) => listing.children.get('a')?.size === 1)).toBe(true);
    now = 999;
    expect(cache.get('dir')?.children.get('a')).toEqual(file(1));
    now = 1000;
    expect(cache.get('dir')).toBeUndefined();
    await cache.load('dir', list);
    expect(list).toHaveBeenCalledTimes(2);
  });

  it('does not store a failed listing, and the next load lists again', async () => {
    await expect(cache.load('dir', async () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(cache.get('dir')).toBeUndefined();
    expect((await cache.load('dir', async () => listingOf({}))).complete).toBe(true);
  });

  it('updates, removes and forgets one child of the cached parent listing', async () => {
    await cache.load('dir', async () => listingOf({ a: file(1), b: file(2) }));
    cache.setChild('dir/c', { kind: 'directory', size: 0, mtimeMs: 5 });
    cache.removeChild('dir/a');
    cache.forgetChild('dir/b');
    const children = cache.get('dir')?.children;
    expect(children?.get('c')?.kind).toBe('directory');
    expect(children?.has('a')).toBe(false);
    expect(children?.has('b')).toBe(true);
    expect(children?.get('b')).toBeUndefined(); // ask the store
    cache.setChild('top', file(3)); // the root's listing is not cached: nothing to do
    expect(cache.get('')).toBeUndefined();
  });

  it('drops the listings of a removed or renamed tree', async () => {
    for (const path of ['d', 'd/e', 'de']) await cache.load(path, async () => listingOf({}));
    cache.forgetTree('d');
    expect([cache.get('d'), cache.get('d/e')]).toEqual([undefined, undefined]);
    expect(cache.get('de')).toBeDefined();
  });

  it('does not store, nor share, a listing taken while its directory changed', async () => {
    let finish!: (listing: DirectoryListing) => void;
    const first = cache.load('dir', () => new Promise((resolve) => (finish = resolve)));
    cache.setChild('dir/new', file(4)); // e.g. mkdir while the LIST runs: the LIST may predate it
    const second = cache.load('dir', async () => listingOf({ new: file(4) }));
    finish(listingOf({}));
    expect((await first).children.has('new')).toBe(false);
    expect((await second).children.has('new')).toBe(true);
    expect(cache.get('dir')?.children.has('new')).toBe(true);
  });

  it('stores a refresh (readdir) unless the directory changed meanwhile, and keeps its own copy', async () => {
    const taken = await cache.refresh('dir', async () => listingOf({ a: file(1) }));
    cache.removeChild('dir/a');
    expect(taken.children.has('a')).toBe(true);
    expect(cache.get('dir')?.children.has('a')).toBe(false);
    let finish!: (listing: DirectoryListing) => void;
    const running = cache.refresh('other', () => new Promise((resolve) => (finish = resolve)));
    cache.forgetTree('other');
    finish(listingOf({}));
    await running;
    expect(cache.get('other')).toBeUndefined();
  });

  it('drops the oldest listings past maxEntries children', async () => {
    const small = new DirectoryCache(1000, () => now, 3);
    await small.load('one', async () => listingOf({ a: file(1), b: file(2) }));
    await small.load('two', async () => listingOf({ c: file(3), d: file(4) }));
    expect(small.get('one')).toBeUndefined();
    expect(small.get('two')).toBeDefined();
  });

  it('keeps nothing with a TTL of 0', async () => {
    const off = new DirectoryCache(0);
    expect(off.enabled).toBe(false);
    await off.load('dir', async () => listingOf({}));
    expect(off.get('dir')).toBeUndefined();
  });
});
