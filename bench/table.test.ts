import { cellText, formatCell, formatNumber, formatRatio, formatSpread, median, renderSpread, renderTable, speedup, summarize, type RowResult } from './table';

describe('median', () => {
  it('takes the middle value of an odd count and the mean of the middle two of an even count', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });

  it('refuses an empty list', () => {
    expect(() => median([])).toThrow('no values');
  });
});

describe('summarize', () => {
  it('gives median, min and max of successful runs', () => {
    expect(summarize([{ ok: true, value: 10 }, { ok: true, value: 30 }, { ok: true, value: 20 }])).toEqual({ ok: true, median: 20, min: 10, max: 30, runs: 3 });
  });

  it('shows the reason alone for a side that could not run, and no spread', () => {
    const summary = summarize([{ ok: false, error: 'not installed (juicefs is not on PATH)', notRun: true }]);
    expect(formatCell(summary)).toBe('not installed (juicefs is not on PATH)');
    expect(formatSpread(summary)).toBe('–');
    expect(formatSpread(summarize([{ ok: false, error: 'EIO' }]))).toBe('error');
  });

  it('fails the whole cell when one run failed', () => {
    expect(summarize([{ ok: true, value: 10 }, { ok: false, error: 'sha256 mismatch' }])).toEqual({ ok: false, error: 'sha256 mismatch' });
  });

  it('has nothing for a side that did not run', () => {
    expect(summarize(undefined)).toBeUndefined();
    expect(summarize([])).toBeUndefined();
  });
});

describe('speedup', () => {
  it('divides throughputs and inverts times, CPU and memory, so >1 always means faster or cheaper', () => {
    expect(speedup(200, 100, 'MiB/s')).toBe(2);
    expect(speedup(1, 4, 's')).toBe(4);
    expect(speedup(0.5, 2, 'CPU s/GiB')).toBe(4);
    expect(speedup(100, 300, 'MiB')).toBe(3);
  });

  it('is undefined when a side is missing or zero', () => {
    expect(speedup(undefined, 1, 'MiB/s')).toBeUndefined();
    expect(speedup(1, 0, 'files/s')).toBeUndefined();
  });
});

describe('formatting', () => {
  it('keeps about three significant digits', () => {
    expect(formatNumber(1234.4)).toBe('1234');
    expect(formatNumber(56.78)).toBe('56.8');
    expect(formatNumber(0.1234)).toBe('0.12');
  });

  it('prints ratios with a times sign', () => {
    expect(formatRatio(0.456)).toBe('0.46×');
    expect(formatRatio(12.34)).toBe('12.3×');
    expect(formatRatio(undefined)).toBe('–');
  });

  it('makes any text safe for one table cell', () => {
    expect(cellText('a | b\nc')).toBe('a \\| b c');
    expect(cellText('x'.repeat(200), 10)).toBe(`${'x'.repeat(9)}…`);
    expect(formatCell({ ok: false, error: 'EROFS: read-only file system' })).toBe('error: EROFS: read-only file system');
  });
});

describe('renderTable', () => {
  const HEADER = [
    '| workload | parallelism | granary | rclone | direct | granary/direct | granary/rclone |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  const rows: RowResult[] = [
    { title: 'sequential read 1 GiB', unit: 'MiB/s', parallelism: '1 stream', runs: { granary: [{ ok: true, value: 100 }], rclone: [{ ok: true, value: 50 }], direct: [{ ok: true, value: 400 }] } },
    { title: 'ls -lR', unit: 's', parallelism: '1', runs: { granary: [{ ok: true, value: 2 }], rclone: [{ ok: false, error: 'boom' }], direct: [{ ok: true, value: 1 }] } },
  ];

  it('prints medians, errors and ratios in workload order', () => {
    expect(renderTable(rows, ['granary', 'rclone', 'direct'], 'granary', ['direct', 'rclone'])).toBe([
      ...HEADER,
      '| sequential read 1 GiB (MiB/s) | 1 stream | 100 | 50.0 | 400 | 0.25× | 2.00× |',
      '| ls -lR (s) | 1 | 2.00 | error: boom | 1.00 | 0.50× | – |',
    ].join('\n'));
  });

  it('prints the mount-cost rows with – for the direct side and ratios that say how much cheaper granary is', () => {
    const cost: RowResult[] = [
      { title: 'mount CPU (user+system) per GiB moved, seq-read', unit: 'CPU s/GiB', parallelism: 'the mount\'s process tree', runs: { granary: [{ ok: true, value: 0.5 }, { ok: true, value: 0.7 }, { ok: true, value: 0.6 }], rclone: [{ ok: true, value: 1.8 }] } },
      { title: 'mount peak RSS, seq-read', unit: 'MiB', parallelism: 'the mount\'s process tree', runs: { granary: [{ ok: true, value: 200 }], rclone: [{ ok: false, error: 'not installed' }] } },
    ];
    expect(renderTable(cost, ['granary', 'rclone', 'direct'], 'granary', ['direct', 'rclone'])).toBe([
      ...HEADER,
      '| mount CPU (user+system) per GiB moved, seq-read (CPU s/GiB) | the mount\'s process tree | 0.60 | 1.80 | – | – | 3.00× |',
      '| mount peak RSS, seq-read (MiB) | the mount\'s process tree | 200 | error: not installed | – | – | – |',
    ].join('\n'));
    expect(renderSpread(cost.slice(0, 1), ['granary', 'direct'])).toContain('| 0.50–0.70 (3 runs) | – |');
  });

  it('prints the min–max spread of every cell', () => {
    expect(renderSpread(rows.slice(1), ['granary', 'rclone'])).toContain('| ls -lR (s) | 2.00–2.00 (1 runs) | error |');
  });
});
