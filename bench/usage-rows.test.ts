import { DEFAULT_OPTIONS } from './options';
import { MIB } from './units';
import { FAILED_RUN, movedBytes, usageOutcome, usageRowResult, USAGE_ROWS } from './usage-rows';

const options = { ...DEFAULT_OPTIONS, size: 512 * MIB, randomReads: 256, blockBytes: MIB };
const usage = { ticks: 150, ticksPerSecond: 100, peakRssBytes: 300 * MIB };

describe('the mount-cost rows', () => {
  it('divide the tree\'s CPU by the bytes the run moved', () => {
    expect(movedBytes('seq-read', options)).toBe(512 * MIB);
    expect(movedBytes('random-read', options)).toBe(256 * MIB);
    // 1.5 CPU seconds over 0.5 GiB read.
    expect(usageOutcome({ workload: 'seq-read', metric: 'cpu' }, { ok: true, value: 300 }, usage, options)).toEqual({ ok: true, value: 3 });
    // 1.5 CPU seconds over 0.25 GiB of random reads.
    expect(usageOutcome({ workload: 'random-read', metric: 'cpu' }, { ok: true, value: 90 }, usage, options)).toEqual({ ok: true, value: 6 });
  });

  it('show the peak RSS in MiB', () => {
    expect(usageOutcome({ workload: 'seq-read', metric: 'rss' }, { ok: true, value: 300 }, usage, options)).toEqual({ ok: true, value: 300 });
  });

  it('have no figure for a failed run or an unknown mount process', () => {
    expect(usageOutcome({ workload: 'seq-read', metric: 'cpu' }, { ok: false, error: 'EIO' }, usage, options)).toEqual({ ok: false, error: FAILED_RUN });
    expect(usageOutcome({ workload: 'seq-read', metric: 'cpu' }, { ok: true, value: 1 }, undefined, options)).toMatchObject({ ok: false });
  });

  it('exist for seq-read, random-read and seq-write CPU and seq-read memory, each with a title and a lower-is-better unit', () => {
    expect(USAGE_ROWS.map((row) => `${row.metric} ${row.workload}`)).toEqual(['cpu seq-read', 'cpu random-read', 'cpu seq-write', 'rss seq-read']);
    expect(usageRowResult(USAGE_ROWS[0]!)).toMatchObject({ title: 'mount CPU (user+system) per GiB moved, seq-read', unit: 'CPU s/GiB', runs: {} });
    expect(usageRowResult(USAGE_ROWS[3]!)).toMatchObject({ title: 'mount peak RSS, seq-read', unit: 'MiB' });
    expect(() => movedBytes('ls-lR', options)).toThrow('add its bytes moved');
  });
});
