import { parseRssBytes } from '../e2e/support/process-usage';
import { cpuSecondsPerGib, parseStat, treeOf, treeTicks, type ProcStat } from './proc';
import { GIB } from './units';

// Real lines in /proc/<pid>/stat's shape: pid (comm) state ppid ... utime(14) stime(15) cutime(16) cstime(17) ...
const HOLDER = '4100 (node) S 4000 4100 4000 0 -1 4194560 2000 300 0 0 150 50 700 100 20 0 11 0 9000 1200000000 30000 18446744073709551615 0 0 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0';
const SERVING = '4101 (granary serve) R 4100 4100 4000 0 -1 4194560 9000 0 0 0 2400 600 0 0 20 0 14 0 9010 2400000000 60000 18446744073709551615 0 0 0 0 0 0 0 4096 0 0 0 0 17 0 0 0 0 0 0';
const ODD_NAME = '4102 (a) b (c) S 4101 4100 4000 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 9020 0 0 0';
const STRANGER = '5000 (bash) S 1 5000 5000 0 -1 0 0 0 0 0 9999 9999 9999 9999 20 0 1 0 100 0 0 0';

describe('parseStat', () => {
  it('reads pid, parent, own and reaped ticks', () => {
    expect(parseStat(HOLDER)).toEqual({ pid: 4100, ppid: 4000, ownTicks: 200, reapedTicks: 800 });
  });

  it('counts fields after the last parenthesis, so a command name with spaces and parentheses does not shift them', () => {
    expect(parseStat(SERVING)).toEqual({ pid: 4101, ppid: 4100, ownTicks: 3000, reapedTicks: 0 });
    expect(parseStat(ODD_NAME)).toEqual({ pid: 4102, ppid: 4101, ownTicks: 10, reapedTicks: 0 });
  });

  it('refuses text that is not a stat line', () => {
    expect(() => parseStat('Name: node')).toThrow('not a /proc/<pid>/stat line');
    expect(() => parseStat('12 (x) S 1 2')).toThrow('not a /proc/<pid>/stat line');
  });
});

describe('parseRssBytes', () => {
  it('reads VmRSS in kB as bytes', () => {
    expect(parseRssBytes('Name:\tnode\nVmHWM:\t  90000 kB\nVmRSS:\t   81920 kB\nThreads:\t11\n')).toBe(81920 * 1024);
  });

  it('is 0 for a process without memory of its own (a zombie, a kernel thread) or a gone one', () => {
    expect(parseRssBytes('Name:\tkworker/0:1\nState:\tI (idle)\n')).toBe(0);
    expect(parseRssBytes('')).toBe(0);
  });
});

describe('the process tree', () => {
  const stats: ProcStat[] = [HOLDER, SERVING, ODD_NAME, STRANGER].map(parseStat);

  it('is the root and every descendant, not its parent or strangers', () => {
    expect(treeOf(4100, stats)).toEqual([4100, 4101, 4102]);
    expect(treeOf(4101, stats)).toEqual([4101, 4102]);
    expect(treeOf(1234, stats)).toEqual([]);
  });

  it('uses the own and reaped ticks of every process in it', () => {
    // Holder 150+50 own + 700+100 reaped, serving 2400+600, grandchild 7+3.
    expect(treeTicks(4100, stats)).toBe(1000 + 3000 + 10);
  });

  it('keeps counting a child that exited: its time moves into the parent\'s reaped time', () => {
    const before = treeTicks(4100, stats);
    // The serving child (3000 ticks so far) worked 500 more ticks, exited and was reaped by the holder.
    const reaped = { ...stats[0]!, reapedTicks: stats[0]!.reapedTicks + 3000 + 500 };
    const after = treeTicks(4100, [reaped, stats[3]!]);
    // The grandchild was reparented away (not to the holder), so its 10 ticks leave the sum.
    expect(after - before).toBe(500 - 10);
  });
});

describe('cpuSecondsPerGib', () => {
  it('turns ticks at CLK_TCK over bytes moved into CPU seconds per GiB', () => {
    expect(cpuSecondsPerGib(300, 100, 2 * GIB)).toBe(1.5);
    expect(cpuSecondsPerGib(25, 100, GIB / 4)).toBe(1);
  });

  it('refuses no bytes', () => {
    expect(() => cpuSecondsPerGib(1, 100, 0)).toThrow('no bytes');
  });
});
