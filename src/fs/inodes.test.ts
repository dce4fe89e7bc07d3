import { childPath, InodeTable, parentPath } from './inodes';

describe('InodeTable', () => {
  it('starts with the root as node 1 at path ""', () => {
    const table = new InodeTable();
    expect(table.get(1)).toMatchObject({ id: 1, path: '', kind: 'directory' });
    expect(table.byPath('')).toBe(table.root);
  });

  it('gives a path one node id and counts lookups until forgotten', () => {
    const table = new InodeTable();
    const a = table.remember('a', 'file');
    expect(table.remember('a', 'file')).toBe(a);
    expect(a.lookups).toBe(2);
    table.forget(a.id, 1);
    expect(table.get(a.id)).toBe(a);
    table.forget(a.id, 1);
    expect(table.get(a.id)).toBeUndefined();
    expect(table.byPath('a')).toBeUndefined();
  });

  it('never reuses a node id', () => {
    const table = new InodeTable();
    const first = table.remember('a', 'file');
    table.forget(first.id, 1);
    expect(table.remember('a', 'file').id).not.toBe(first.id);
  });

  it('gives a new node to a path that changed kind, and keeps the old one until forgotten', () => {
    const table = new InodeTable();
    const file = table.remember('a', 'file');
    const directory = table.remember('a', 'directory');
    expect(directory.id).not.toBe(file.id);
    expect(table.byPath('a')).toBe(directory);
    table.forget(file.id, 1);
    expect(table.byPath('a')).toBe(directory);
    expect(table.get(file.id)).toBeUndefined();
  });

  it('never forgets the root', () => {
    const table = new InodeTable();
    table.forget(1, 100);
    expect(table.get(1)).toBe(table.root);
  });

  it('moves a renamed node and everything below it, keeping their ids', () => {
    const table = new InodeTable();
    const dir = table.remember('a', 'directory');
    const child = table.remember('a/b', 'directory');
    const grandchild = table.remember('a/b/c.txt', 'file');
    const sibling = table.remember('ab', 'file');
    const replaced = table.remember('z', 'directory');
    table.rename('a', 'z');
    expect(table.byPath('z')).toBe(dir);
    expect(table.byPath('z/b/c.txt')).toBe(grandchild);
    expect(grandchild.path).toBe('z/b/c.txt');
    expect(child.path).toBe('z/b');
    expect(table.byPath('a')).toBeUndefined();
    expect(table.byPath('a/b')).toBeUndefined();
    expect(table.byPath('ab')).toBe(sibling);
    expect(table.get(replaced.id)).toBe(replaced); // held by the kernel until forgotten, but no longer named
    table.forget(replaced.id, 1);
    expect(table.byPath('z')).toBe(dir);
  });

  it('detaches deleted paths from their nodes', () => {
    const table = new InodeTable();
    const dir = table.remember('a', 'directory');
    table.remember('a/b', 'file');
    table.detach('a');
    expect(table.byPath('a')).toBeUndefined();
    expect(table.byPath('a/b')).toBeUndefined();
    expect(table.get(dir.id)).toBe(dir);
  });

  it('joins and splits paths', () => {
    expect(childPath('', 'a')).toBe('a');
    expect(childPath('a/b', 'c')).toBe('a/b/c');
    expect(parentPath('a/b/c')).toBe('a/b');
    expect(parentPath('a')).toBe('');
  });
});
