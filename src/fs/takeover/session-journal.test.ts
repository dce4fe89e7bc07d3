import * as fs from 'node:fs';
import nodeFs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InodeTable } from '../inodes';
import { JOURNAL_FILE, replay, SessionJournal } from './session-journal';

const protocol = { major: 7, minor: 38, flags: 123, maxReadahead: 1 << 20, kernelCanResend: true };

describe('SessionJournal', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-journal-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('replays the session, the nodes with their latest paths and the open handles, as a successor needs them', () => {
    const journal = SessionJournal.create(dir);
    const inodes = new InodeTable(journal);
    journal.session({ protocol, mountpoint: '/mnt/volume' });
    const a = inodes.remember('a', 'directory');
    const file = inodes.remember('a/model.bin', 'file');
    const gone = inodes.remember('b.txt', 'file');
    inodes.rename('a', 'renamed');
    inodes.detach('b.txt');
    const forgotten = inodes.remember('c.txt', 'file');
    inodes.forget(forgotten.id, 1);
    journal.opened(7, { kind: 'read', nodeId: file.id, key: 'p/renamed/model.bin', etag: 'e1', size: 10, mtimeMs: 5 });
    journal.opened(8, { kind: 'write', nodeId: gone.id });
    journal.opened(9, { kind: 'directory', nodeId: a.id });
    journal.released(9);
    journal.requests({ inFlight: [2n ** 40n + 2n, 8n], highest: 2n ** 40n + 4n });
    journal.close();

    const resumed = SessionJournal.resume(dir);
    expect(resumed?.current.session).toEqual({ protocol, mountpoint: '/mnt/volume' });
    expect([...(resumed?.current.nodes.values() ?? [])]).toEqual([
      { id: a.id, kind: 'directory', path: 'renamed' },
      { id: file.id, kind: 'file', path: 'renamed/model.bin' },
      { id: gone.id, kind: 'file', path: undefined },
    ]);
    expect([...(resumed?.current.handles ?? [])]).toEqual([
      [7, { kind: 'read', nodeId: file.id, key: 'p/renamed/model.bin', etag: 'e1', size: 10, mtimeMs: 5 }],
      [8, { kind: 'write', nodeId: gone.id }],
    ]);
    // Request ids are 64-bit: kept exactly.
    expect(resumed?.current.requests).toEqual({ inFlight: [2n ** 40n + 2n, 8n], highest: 2n ** 40n + 4n });
    resumed?.close();
  });

  it('restores a successor\'s inode table with the same ids, new ids after them, and restored nodes kept whatever is forgotten', () => {
    const journal = SessionJournal.create(dir);
    const inodes = new InodeTable(journal);
    journal.session({ protocol, mountpoint: '/m' });
    const first = inodes.remember('x/y.bin', 'file');
    journal.close();
    const successor = new InodeTable();
    successor.restore(SessionJournal.resume(dir)?.current.nodes.values() ?? []);
    expect(successor.get(first.id)?.path).toBe('x/y.bin');
    expect(successor.byPath('x/y.bin')?.id).toBe(first.id);
    expect(successor.remember('x/z.bin', 'file').id).toBe(first.id + 1);
    // The restored node's real lookup count is unknown: a FORGET of what the kernel might hold does not drop it.
    successor.forget(first.id, 1);
    expect(successor.get(first.id)).toBeDefined();
  });

  it('ignores a torn last line (a write cut short by the crash) and knows no session in an empty or missing journal', () => {
    const journal = SessionJournal.create(dir);
    journal.session({ protocol, mountpoint: '/m' });
    journal.node(5, 'file', 'f');
    journal.close();
    fs.appendFileSync(path.join(dir, JOURNAL_FILE), '["N",6,"fi');
    const state = replay(fs.readFileSync(path.join(dir, JOURNAL_FILE), 'utf8'));
    expect([...state.nodes.keys()]).toEqual([5]);
    expect(SessionJournal.resume(path.join(dir, 'missing'))).toBeUndefined();
    SessionJournal.create(dir).close();
    expect(SessionJournal.resume(dir)).toBeUndefined();
  });

  it('stays bounded: a long session is compacted to its live entries, and replays the same', () => {
    const journal = SessionJournal.create(dir);
    const inodes = new InodeTable(journal);
    journal.session({ protocol, mountpoint: '/m' });
    const kept = inodes.remember('kept', 'file');
    for (let i = 0; i < 30_000; i++) inodes.forget(inodes.remember(`churn-${i}`, 'file').id, 1);
    journal.close();
    const lines = fs.readFileSync(path.join(dir, JOURNAL_FILE), 'utf8').split('\n').filter(Boolean);
    expect(lines.length).toBeLessThan(25_000);
    const resumed = SessionJournal.resume(dir);
    expect([...(resumed?.current.nodes.values() ?? [])]).toEqual([{ id: kept.id, kind: 'file', path: 'kept' }]);
    resumed?.close();
  });

  it('keeps records in memory until flushed, then writes them all with one write(2); requests and close write at once', () => {
    const writes = jest.spyOn(nodeFs, 'writeSync');
    try {
      const journal = SessionJournal.create(dir);
      const file = path.join(dir, JOURNAL_FILE);
      journal.session({ protocol, mountpoint: '/m' });
      for (let id = 2; id < 102; id++) journal.node(id, 'file', `f${id}`);
      journal.opened(7, { kind: 'directory', nodeId: 1 });
      expect(fs.readFileSync(file, 'utf8')).toBe('');
      journal.flush();
      expect(writes).toHaveBeenCalledTimes(1);
      expect(replay(fs.readFileSync(file, 'utf8')).nodes.size).toBe(100);
      journal.flush();
      expect(writes).toHaveBeenCalledTimes(1);
      // The requests in flight come from a timer, not before a reply: written at once.
      journal.requests({ inFlight: [8n], highest: 8n });
      expect(replay(fs.readFileSync(file, 'utf8')).requests).toEqual({ inFlight: [8n], highest: 8n });
      journal.released(7);
      journal.close();
      expect(replay(fs.readFileSync(file, 'utf8')).handles.size).toBe(0);
    } finally {
      writes.mockRestore();
    }
  });

  it('lets releases and forgets wait before a reply, and writes them with the next record a reply may hold', () => {
    const journal = SessionJournal.create(dir);
    const file = path.join(dir, JOURNAL_FILE);
    journal.session({ protocol, mountpoint: '/m' });
    journal.node(2, 'file', 'f');
    journal.opened(7, { kind: 'directory', nodeId: 1 });
    journal.beforeReply();
    journal.released(7);
    journal.forgotten([2]);
    journal.beforeReply();
    const written = replay(fs.readFileSync(file, 'utf8'));
    expect([written.nodes.size, written.handles.size]).toEqual([1, 1]);
    journal.node(3, 'file', 'g');
    journal.beforeReply();
    const after = replay(fs.readFileSync(file, 'utf8'));
    expect([[...after.nodes.keys()], after.handles.size]).toEqual([[3], 0]);
    journal.close();
  });

  it('keeps what a failed flush could not write for the next one, completing a line cut short', () => {
    const journal = SessionJournal.create(dir);
    const file = path.join(dir, JOURNAL_FILE);
    journal.session({ protocol, mountpoint: '/m' });
    journal.node(2, 'file', 'f');
    const real = nodeFs.writeSync;
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    // The first write takes 5 bytes only (the disk filled up), the next fails.
    const cutShort = ((fd: number, buffer: Buffer, offset: number) => real(fd, buffer, offset, 5)) as typeof nodeFs.writeSync;
    const writes = jest.spyOn(nodeFs, 'writeSync')
      .mockImplementationOnce(cutShort)
      .mockImplementationOnce(() => {
        throw full;
      });
    try {
      expect(() => journal.flush()).toThrow(full);
      expect(fs.readFileSync(file, 'utf8')).toHaveLength(5);
      journal.node(3, 'file', 'g');
      journal.flush();
    } finally {
      writes.mockRestore();
    }
    expect([...replay(fs.readFileSync(file, 'utf8')).nodes.keys()]).toEqual([2, 3]);
    journal.close();
  });

  it('compacts the records not written yet with the rest: the new file holds them, once', () => {
    const journal = SessionJournal.create(dir);
    const inodes = new InodeTable(journal);
    journal.session({ protocol, mountpoint: '/m' });
    for (let i = 0; i < 10_001; i++) inodes.forget(inodes.remember(`churn-${i}`, 'file').id, 1);
    const kept = inodes.remember('kept', 'file');
    journal.flush();
    const lines = fs.readFileSync(path.join(dir, JOURNAL_FILE), 'utf8').split('\n').filter(Boolean);
    expect(lines.length).toBeLessThan(10);
    expect([...replay(lines.join('\n')).nodes.values()]).toEqual([{ id: kept.id, kind: 'file', path: 'kept' }]);
    journal.close();
  });

  it('is removed when the session ends, so a later mount never takes over a stale one', () => {
    const journal = SessionJournal.create(dir);
    journal.session({ protocol, mountpoint: '/m' });
    journal.remove();
    expect(fs.existsSync(path.join(dir, JOURNAL_FILE))).toBe(false);
  });
});
