import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Socket } from 'node:net';
import { ConnectionGate, fitToFileLimit, openFileLimit, RESERVED_FILE_DESCRIPTORS } from './connection-gate';

/** Enough of a socket for the gate: its peer's address, destroy(), and 'close'. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string | undefined) {
    super();
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

const socket = (address: string | undefined) => new FakeSocket(address) as FakeSocket & Socket;

describe('ConnectionGate', () => {
  it('admits up to the cap per address, destroys the excess at once, and counts it', () => {
    const gate = new ConnectionGate(2);
    const first = [socket('10.0.0.1'), socket('10.0.0.1')];
    expect(first.map((each) => gate.admit(each))).toEqual([true, true]);
    const excess = socket('10.0.0.1');
    expect(gate.admit(excess)).toBe(false);
    expect(excess.destroyed).toBe(true);
    expect(gate.refused).toBe(1);
    // Another address has its own count.
    expect(gate.admit(socket('10.0.0.2'))).toBe(true);
    expect(gate.open).toBe(3);
  });

  it('frees a place when an admitted connection closes, and not when a refused one does', () => {
    const gate = new ConnectionGate(1);
    const held = socket('10.0.0.1');
    expect(gate.admit(held)).toBe(true);
    expect(gate.admit(socket('10.0.0.1'))).toBe(false);
    expect(gate.open).toBe(1);
    held.destroy();
    expect(gate.open).toBe(0);
    expect(gate.admit(socket('10.0.0.1'))).toBe(true);
  });

  it('refuses a socket whose peer is already gone (no address)', () => {
    const gate = new ConnectionGate(10);
    const gone = socket(undefined);
    expect(gate.admit(gone)).toBe(false);
    expect(gone.destroyed).toBe(true);
    expect(gate.open).toBe(0);
  });
});

describe('the open file limit', () => {
  it("reads the soft limit of this process's open files", () => {
    const limit = openFileLimit();
    expect(limit).toBeGreaterThan(0);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-limits-'));
    try {
      const file = path.join(dir, 'limits');
      fs.writeFileSync(file, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            4096                 524288               files\n');
      expect(openFileLimit(file)).toBe(4096);
      fs.writeFileSync(file, 'Max open files            unlimited            unlimited            files\n');
      expect(openFileLimit(file)).toBeUndefined();
      expect(openFileLimit(path.join(dir, 'missing'))).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lowers the connection cap to fit the limit with descriptors to spare, and keeps it when it fits', () => {
    expect(fitToFileLimit(16_384, 1_048_576)).toBe(16_384);
    expect(fitToFileLimit(16_384, 10_000)).toBe(10_000 - RESERVED_FILE_DESCRIPTORS);
    expect(fitToFileLimit(16_384, undefined)).toBe(16_384);
    expect(fitToFileLimit(16_384, 100)).toBe(1);
  });
});
