// The pure part of the cluster cache report: one table of medians with granary+cache's comparisons,
// and the spread of every cell.
import { formatCell, formatNumber, formatRatio, formatSpread, summarize, type Outcome } from '../table';
import type { CacheColumn } from './options';
import type { Better, CacheRowSpec, CacheRowId } from './rows';

/** A row after the runs: its spec and every run of every column it has. */
export interface CacheRowResult extends CacheRowSpec {
  runs: Partial<Record<CacheColumn, Outcome[]>>;
}

/** The column every comparison is about. */
export const SUBJECT: CacheColumn = 'granary+cache';

/** How many times better `value` is than `other` (>1 = better), for a unit where `better` holds; undefined when either is missing or zero. */
export function advantage(value: number | undefined, other: number | undefined, better: Better): number | undefined {
  if (value === undefined || other === undefined || value <= 0 || other <= 0) return undefined;
  return better === 'higher' ? value / other : other / value;
}

/** The median of a cell, or undefined when it did not run or failed. */
export function medianOf(rows: readonly CacheRowResult[], row: CacheRowId, column: CacheColumn): number | undefined {
  const summary = summarize(rows.find((candidate) => candidate.id === row)?.runs[column]);
  return summary?.ok ? summary.median : undefined;
}

/** The comparison cell of a row: `label N×` for each comparison both sides of which have a median, or `–`. */
export function comparisonText(rows: readonly CacheRowResult[], row: CacheRowResult): string {
  const own = medianOf(rows, row.id, SUBJECT);
  const parts = row.comparisons.flatMap((comparison) => {
    const ratio = advantage(own, medianOf(rows, comparison.row, comparison.column), row.better);
    return ratio === undefined ? [] : [`${formatRatio(ratio)} ${comparison.label}`];
  });
  return parts.length > 0 ? parts.join(', ') : '–';
}

/** The cell of a column the row has no number in. */
export const NOT_APPLICABLE = '·';

const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
const rule = (count: number) => line(Array.from({ length: count }, () => '---'));

/** The columns that have a number in at least one row, in table order. */
export function usedColumns(rows: readonly CacheRowResult[], columns: readonly CacheColumn[]): CacheColumn[] {
  return columns.filter((column) => rows.some((row) => row.columns.includes(column)));
}

/** The main table: medians per column, `·` where a row has no such column, then granary+cache against the cells it is compared with. */
export function renderCacheTable(rows: readonly CacheRowResult[], columns: readonly CacheColumn[]): string {
  const shown = usedColumns(rows, columns);
  const header = ['measurement', 'readers', ...shown, `${SUBJECT} is (>1× = better than)`];
  const lines = [line(header), rule(header.length)];
  for (const row of rows) {
    const cells = shown.map((column) => (row.columns.includes(column) ? formatCell(summarize(row.runs[column])) : NOT_APPLICABLE));
    lines.push(line([`${row.title} (${row.unit})`, row.readers, ...cells, comparisonText(rows, row)]));
  }
  return lines.join('\n');
}

/** The spread table of the footer: min–max of every cell. */
export function renderCacheSpread(rows: readonly CacheRowResult[], columns: readonly CacheColumn[]): string {
  const shown = usedColumns(rows, columns);
  const header = ['measurement', ...shown];
  const lines = [line(header), rule(header.length)];
  for (const row of rows) {
    lines.push(line([`${row.title} (${row.unit})`, ...shown.map((column) => (row.columns.includes(column) ? formatSpread(summarize(row.runs[column])) : NOT_APPLICABLE))]));
  }
  return lines.join('\n');
}

/** The closing line on the ceiling: warm RAM read ÷ local page-cache read, from the medians; undefined when either is missing. */
export function ceilingNote(rows: readonly CacheRowResult[]): string | undefined {
  const warm = medianOf(rows, 'warm-ram', SUBJECT);
  const local = medianOf(rows, 'page-cache', 'local');
  if (warm === undefined || local === undefined) return undefined;
  return `warm read from the RAM tier ${formatNumber(warm)} MiB/s ÷ local page-cache read ${formatNumber(local)} MiB/s = ${formatRatio(warm / local)} of the ceiling on this machine`;
}
