import type { ObjectInfo } from '../objectstore/store';
import type { PathStat } from './attr-cache';
import { listingsOfSubtree } from './subtree-listing';

const object = (key: string, size = 1): ObjectInfo => ({ key, size, etag: `e-${key}`, lastModified: new Date(1000) });
const file = (key: string, size = 1): PathStat => ({ kind: 'file', size, mtimeMs: 1000, etag: `e-${key}` });
const DIRECTORY: PathStat = { kind: 'directory', size: 0, mtimeMs: 5 };

describe('listingsOfSubtree', () => {
  const build = (keys: string[], path = 'data', prefix = 'vol/data/') =>
    listingsOfSubtree({
      prefix, path,
      objects: keys.map((key) => object(key)),
      listable: (name) => name !== '' && name !== '.' && name !== '..',
      fileStat: (info) => ({ kind: 'file', size: info.size, mtimeMs: info.lastModified.getTime(), etag: info.etag }),
      directoryStat: DIRECTORY,
    });

  it('gives each directory what a delimiter listing of it would', () => {
    const listings = build(['vol/data/a.txt', 'vol/data/d1/x.bin', 'vol/data/d1/y.bin', 'vol/data/d1/deep/z.bin', 'vol/data/d2/', 'vol/data/d2/w']);
    expect([...listings.keys()].sort()).toEqual(['data', 'data/d1', 'data/d1/deep', 'data/d2']);
    expect(listings.get('data')).toEqual({ complete: true, children: new Map([['a.txt', file('vol/data/a.txt')], ['d1', DIRECTORY], ['d2', DIRECTORY]]) });
    expect(listings.get('data/d1')?.children).toEqual(new Map([['x.bin', file('vol/data/d1/x.bin')], ['y.bin', file('vol/data/d1/y.bin')], ['deep', DIRECTORY]]));
    expect(listings.get('data/d1/deep')?.children).toEqual(new Map([['z.bin', file('vol/data/d1/deep/z.bin')]]));
    // The directory's own marker ("d2/") is not a child of it.
    expect(listings.get('data/d2')?.children).toEqual(new Map([['w', file('vol/data/d2/w')]]));
  });

  it('lets a directory win over a file of the same name, in either order, and lists empty directories from their markers', () => {
    for (const keys of [['vol/data/a', 'vol/data/a/b'], ['vol/data/a/b', 'vol/data/a']]) {
      expect(build(keys).get('data')?.children.get('a')).toEqual(DIRECTORY);
    }
    expect(build(['vol/data/empty/']).get('data/empty')).toEqual({ complete: true, children: new Map() });
  });

  it('skips keys no directory read would reach (empty segments), and lists the mount root from the bare prefix', () => {
    const listings = build(['vol/data/a//b', 'vol/data/c'], '', 'vol/data/');
    expect(listings.get('')?.children).toEqual(new Map([['a', DIRECTORY], ['c', file('vol/data/c')]]));
    expect(listings.get('a')?.children).toEqual(new Map());
    expect(listings.has('a/')).toBe(false);
  });
});
