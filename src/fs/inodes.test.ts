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

  it('joins and splits paths', () => {
    expect(childPath('', 'a')).toBe('a');
    expect(childPath('a/b', 'c')).toBe('a/b/c');
    expect(parentPath('a/b/c')).toBe('a/b');
    expect(parentPath('a')).toBe('');
  });
});
