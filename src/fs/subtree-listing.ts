// The listings of every directory under one prefix, built from one flat listing of its keys (ListObjectsV2 without a
// delimiter): a small tree is then listed in a page or two instead of one LIST per directory. Each listing holds what
// a delimiter LIST of that directory would give: its objects as files, and the first segment of deeper keys as
// directories (a directory winning over a file of the same name, as in Namespace.list).
import type { ObjectInfo } from '../objectstore/store';
import type { PathStat } from './attr-cache';
import type { DirectoryListing } from './directory-cache';

/** What building the listings needs of the namespace. */
export interface SubtreeSource {
  /** The key prefix of the subtree's root directory (ends with '/', or '' for the bucket root). */
  prefix: string;
  /** The root directory's path ('' for the mount's root). */
  path: string;
  /** Every object under `prefix`, from a complete listing without a delimiter. */
  objects: ObjectInfo[];
  /** Whether `name` can be a file name in directory `path` (Namespace's rule: not empty, '.', '..', too long). */
  listable(name: string, path: string): boolean;
  /** A file's attributes from its object. */
  fileStat(object: ObjectInfo): PathStat;
  /** A directory's attributes (directories have no object of their own to take them from). */
  directoryStat: PathStat;
}

/** The complete listing of every directory in the subtree, root included, by path. */
export function listingsOfSubtree(source: SubtreeSource): Map<string, DirectoryListing> {
  const children = new Map<string, Map<string, PathStat>>([[source.path, new Map()]]);
  const listingOf = (path: string) => {
    let listing = children.get(path);
    if (!listing) children.set(path, (listing = new Map()));
    return listing;
  };
  for (const object of source.objects) {
    if (!object.key.startsWith(source.prefix)) continue;
    let path = source.path;
    let rest = object.key.slice(source.prefix.length);
    for (let slash = rest.indexOf('/'); ; slash = rest.indexOf('/')) {
      const name = slash < 0 ? rest : rest.slice(0, slash);
      // A name no directory read would show: the key is not reachable through this mount.
      if (!source.listable(name, path)) break;
      const listing = listingOf(path);
      if (slash < 0) {
        if (!listing.has(name)) listing.set(name, source.fileStat(object));
        break;
      }
      listing.set(name, source.directoryStat);
      path = path === '' ? name : `${path}/${name}`;
      listingOf(path);
      rest = rest.slice(slash + 1);
    }
  }
  return new Map([...children].map(([path, names]) => [path, { children: names, complete: true }]));
}
