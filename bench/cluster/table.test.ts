import { CACHE_COLUMNS, DEFAULT_CACHE_OPTIONS } from './options';
import { cacheRows, selectedRows, type CacheRowId } from './rows';
import { advantage, ceilingNote, comparisonText, medianOf, NOT_APPLICABLE, renderCacheSpread, renderCacheTable, usedColumns, type CacheRowResult } from './table';

const ok = (...values: number[]) => values.map((value) => ({ ok: true as const, value }));

/** Every row of the default options, with the given runs. */
function results(runs: Partial<Record<CacheRowId, CacheRowResult['runs']>>): CacheRowResult[] {
  return cacheRows(DEFAULT_CACHE_OPTIONS).map((spec) => ({ ...spec, runs: runs[spec.id] ?? {} }));
}

describe('advantage', () => {
  it('is value ÷ other when higher is better, other ÷ value when lower is better', () => {
    expect(advantage(300, 100, 'higher')).toBe(3);
    expect(advantage(1, 3, 'lower')).toBe(3);
    expect(advantage(3, 1, 'lower')).toBeCloseTo(1 / 3);
  });

  it('has none when either side is missing or zero', () => {
    expect(advantage(undefined, 1, 'higher')).toBeUndefined();
    expect(advantage(1, undefined, 'lower')).toBeUndefined();
    expect(advantage(0, 1, 'higher')).toBeUndefined();
  });
});

describe('comparisons', () => {
  const rows = results({
    cold: { 'granary+cache': ok(100, 300, 200), granary: ok(400), rclone: [{ ok: false, error: 'rclone is not installed' }], direct: ok(800) },
    'warm-ram': { 'granary+cache': ok(600) },
    'fan-out-origin': { 'granary+cache': ok(1.02), granary: ok(3.06), rclone: ok(10.2) },
    'page-cache': { local: ok(2000, 1000, 1500) },
  });
  const row = (id: CacheRowId) => rows.find((candidate) => candidate.id === id)!;

  it('takes the median of a cell, and nothing from a failed or missing one', () => {
    expect(medianOf(rows, 'cold', 'granary+cache')).toBe(200);
    expect(medianOf(rows, 'cold', 'rclone')).toBeUndefined();
    expect(medianOf(rows, 'warm-disk', 'granary+cache')).toBeUndefined();
  });

  it('compares granary+cache with each named cell that has a number, better-direction aware', () => {
    expect(comparisonText(rows, row('cold'))).toBe('0.50× granary, 0.25× direct');
    expect(comparisonText(rows, row('fan-out-origin'))).toBe('3.00× granary, 10.0× rclone');
    // Warm RAM is compared with cells of other rows: the cold reads and the page-cache ceiling.
    expect(comparisonText(rows, row('warm-ram'))).toBe('1.50× cold granary, 0.40× page-cache read');
  });

  it('shows – when nothing can be compared', () => {
    expect(comparisonText(rows, row('warm-disk'))).toBe('–');
    expect(comparisonText(rows, row('page-cache'))).toBe('–');
  });

  it('compares the S3 gateway\'s reads with the same SDK read of the object store and with the mount\'s cold and warm reads', () => {
    const gateway = results({
      cold: { 'granary+cache': ok(200) },
      'warm-ram': { 'granary+cache': ok(600) },
      'gateway-cold': { 'granary+cache': ok(150, 100, 120), direct: ok(300) },
      'gateway-warm': { 'granary+cache': ok(450) },
      'gateway-cold-origin': { 'granary+cache': ok(1.02), direct: ok(1.0) },
      'gateway-warm-origin': { 'granary+cache': ok(0.0001) },
    });
    const of = (id: CacheRowId) => gateway.find((candidate) => candidate.id === id)!;
    expect(comparisonText(gateway, of('gateway-cold'))).toBe('0.40× direct, 0.60× cold mount');
    expect(comparisonText(gateway, of('gateway-warm'))).toBe('1.50× direct, 0.75× warm-RAM mount');
    expect(comparisonText(gateway, of('gateway-cold-origin'))).toBe('0.98× direct');
    expect(comparisonText(gateway, of('gateway-warm-origin'))).toBe('–');
    // Run alone (--only gateway), the rows still compare with their own direct cell.
    expect(comparisonText(gateway.filter((row) => row.group === 'gateway'), of('gateway-warm'))).toBe('1.50× direct');
  });

  it('states the ceiling as warm RAM ÷ page cache, or nothing when either is missing', () => {
    expect(ceilingNote(rows)).toBe('warm read from the RAM tier 600 MiB/s ÷ local page-cache read 1500 MiB/s = 0.40× of the ceiling on this machine');
    expect(ceilingNote(results({ 'warm-ram': { 'granary+cache': ok(600) } }))).toBeUndefined();
  });
});

describe('renderCacheTable', () => {
  it('prints one line per row with medians, · for columns a row does not have, errors, and the comparison', () => {
    const rows = results({
      cold: { 'granary+cache': ok(100, 300, 200), granary: ok(400), rclone: [{ ok: false, error: 'mount | failed' }], direct: ok(800) },
    }).filter((row) => row.id === 'cold' || row.id === 'warm-ram');
    const lines = renderCacheTable(rows, CACHE_COLUMNS).split('\n');
    expect(lines[0]).toBe('| measurement | readers | granary+cache | granary | rclone | direct | granary+cache is (>1× = better than) |');
    expect(lines[1]).toBe('| --- | --- | --- | --- | --- | --- | --- |');
    expect(lines[2]).toBe('| cold read of a 1 GiB file, cache servers empty (MiB/s) | 1, 1 MiB reads; direct: 16 × 8 MiB GETs | 200 | 400 | error: mount \\| failed | 800 | 0.50× granary, 0.25× direct |');
    expect(lines[3]).toBe(`| warm read from the RAM tier, new mount (MiB/s) | 1, 1 MiB reads | – | ${NOT_APPLICABLE} | ${NOT_APPLICABLE} | ${NOT_APPLICABLE} | – |`);
    expect(lines).toHaveLength(4);
  });

  it('prints the S3 gateway rows in the granary+cache and direct columns only, saying how the SDK reads', () => {
    const rows = results({
      'gateway-cold': { 'granary+cache': ok(120), direct: ok(300) },
      'gateway-warm-origin': { 'granary+cache': ok(0.0001) },
    }).filter((row) => row.group === 'gateway');
    const lines = renderCacheTable(rows, CACHE_COLUMNS).split('\n');
    expect(lines[0]).toBe('| measurement | readers | granary+cache | direct | granary+cache is (>1× = better than) |');
    expect(lines[2]).toBe('| SDK through the S3 gateway: cold read of the 1 GiB file, cache servers empty (MiB/s) | 1 @aws-sdk/client-s3 client, 16 × 8 MiB ranged GetObject in flight, bodies streamed, hashed in order; direct: the same at the object store | 120 | 300 | 0.40× direct |');
    expect(lines[5]).toBe(`| SDK through the S3 gateway, warm read: read from the object store (× file) | the warm read above | 0.00 | ${NOT_APPLICABLE} | – |`);
    expect(lines).toHaveLength(6);
  });

  it('leaves out the columns no row has, and spreads every cell', () => {
    const rows = results({ 'page-cache': { local: ok(2000, 1000, 1500) } }).filter((row) => row.id === 'page-cache');
    expect(usedColumns(rows, CACHE_COLUMNS)).toEqual(['local']);
    expect(renderCacheSpread(rows, CACHE_COLUMNS).split('\n')[2]).toBe('| the ceiling: the same file from the local page cache (2nd read of a local file) (MiB/s) | 1000–2000 (3 runs) |');
  });
});

describe('rows', () => {
  it('keeps the rows of the chosen groups, in table order', () => {
    expect(selectedRows({ ...DEFAULT_CACHE_OPTIONS, only: ['hot-blocks', 'cold'] }).map((row) => row.id)).toEqual(['cold', 'hot-served', 'hot-speed', 'hot-alone-served', 'hot-alone-speed']);
  });

  it('makes the S3 gateway a group of its own, between the mount\'s warm rows and the fan-out', () => {
    expect(selectedRows({ ...DEFAULT_CACHE_OPTIONS, only: ['gateway'] }).map((row) => row.id)).toEqual(['gateway-cold', 'gateway-warm', 'gateway-cold-origin', 'gateway-warm-origin']);
    const all = cacheRows(DEFAULT_CACHE_OPTIONS).map((row) => row.id);
    expect(all.indexOf('gateway-cold')).toBe(all.indexOf('warm-disk') + 1);
    expect(all.indexOf('fan-out-origin')).toBe(all.indexOf('gateway-warm-origin') + 1);
  });

  it('compares only with rows that exist, and every row has a column', () => {
    const rows = cacheRows(DEFAULT_CACHE_OPTIONS);
    const ids = new Set(rows.map((row) => row.id));
    for (const row of rows) {
      expect(row.columns.length).toBeGreaterThan(0);
      for (const comparison of row.comparisons) {
        expect(ids.has(comparison.row)).toBe(true);
        expect(rows.find((other) => other.id === comparison.row)!.columns).toContain(comparison.column);
      }
    }
  });
});
