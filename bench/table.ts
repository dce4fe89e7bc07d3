// The pure part of the report: medians, spreads, ratios and the markdown table.

/**
 * What a row's number counts: throughput (higher is better), or elapsed seconds, a mount's CPU seconds per GiB
 * moved and a mount's peak resident MiB (lower is better).
 */
export type Unit = 'MiB/s' | 'files/s' | 's' | 'CPU s/GiB' | 'MiB';

/** True for the units where less is better (time, CPU, memory). */
export function lowerIsBetter(unit: Unit): boolean {
  return unit === 's' || unit === 'CPU s/GiB' || unit === 'MiB';
}

/**
 * One measured run of one side: a number in the row's unit, or why it failed; `notRun` when the side could not
 * run at all (not installed, not comparable), so that its cell shows the reason alone, not as an error.
 */
export type Outcome = { ok: true; value: number } | { ok: false; error: string; notRun?: true };

/** All runs of one workload, per side (sides that were not run are absent). */
export interface RowResult {
  title: string;
  unit: Unit;
  /** How many streams or requests each side had in flight, stated in the table. */
  parallelism: string;
  runs: Record<string, Outcome[]>;
}

/** The summary of one cell: median and spread of its runs, or the first failure. */
export type CellSummary = { ok: true; median: number; min: number; max: number; runs: number } | { ok: false; error: string; notRun?: true };

/** Longest failure reason a cell shows; the JSON output keeps the whole message. */
export const MAX_ERROR_CHARS = 90;

/** Median of the values (mean of the middle two for an even count); throws on an empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Summarises the runs of one cell; one failed run fails the cell, so a fast wrong answer never hides behind a median. */
export function summarize(outcomes: readonly Outcome[] | undefined): CellSummary | undefined {
  if (!outcomes || outcomes.length === 0) return undefined;
  const failed = outcomes.find((outcome): outcome is Extract<Outcome, { ok: false }> => !outcome.ok);
  if (failed) return { ok: false, error: failed.error, ...(failed.notRun && { notRun: true as const }) };
  const values = outcomes.map((outcome) => (outcome as { value: number }).value);
  return { ok: true, median: median(values), min: Math.min(...values), max: Math.max(...values), runs: values.length };
}

/** How many times better `side` is than `other` (>1 = side faster, or cheaper), whatever the unit; undefined when either is missing or zero. */
export function speedup(side: number | undefined, other: number | undefined, unit: Unit): number | undefined {
  if (side === undefined || other === undefined || side <= 0 || other <= 0) return undefined;
  return lowerIsBetter(unit) ? other / side : side / other;
}

/** A number with three significant digits at most, and no more than two decimals (`1234`, `56.7`, `0.12`). */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** A ratio as `1.23×`, or `–` when there is none. */
export function formatRatio(ratio: number | undefined): string {
  return ratio === undefined ? '–' : `${ratio >= 10 ? ratio.toFixed(1) : ratio.toFixed(2)}×`;
}

/** Text safe inside one markdown table cell: no pipes, no newlines, bounded length. */
export function cellText(text: string, maxChars = MAX_ERROR_CHARS): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const cut = flat.length > maxChars ? `${flat.slice(0, maxChars - 1)}…` : flat;
  return cut.replace(/\|/g, '\\|');
}

/** The median of a cell, `error: reason`, the reason a side could not run (`not installed`), or `–` for a side without a figure. */
export function formatCell(summary: CellSummary | undefined): string {
  if (!summary) return '–';
  if (summary.ok) return formatNumber(summary.median);
  return cellText(summary.notRun ? summary.error : `error: ${summary.error}`);
}

/** The min–max spread of a cell, `error`, or `–` (also for a side that could not run). */
export function formatSpread(summary: CellSummary | undefined): string {
  if (!summary || (!summary.ok && summary.notRun)) return '–';
  if (!summary.ok) return 'error';
  return `${formatNumber(summary.min)}–${formatNumber(summary.max)} (${summary.runs} runs)`;
}

const row = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
const rule = (count: number) => row(Array.from({ length: count }, () => '---'));
const medianOf = (summary: CellSummary | undefined) => (summary?.ok ? summary.median : undefined);

/**
 * The main table: one row per workload with the median of each side, then `subject`'s speed-up over each
 * of `others` (>1× = subject faster; for seconds the ratio is inverted so that the meaning holds).
 */
export function renderTable(rows: readonly RowResult[], sides: readonly string[], subject: string, others: readonly string[]): string {
  const header = ['workload', 'parallelism', ...sides, ...others.map((other) => `${subject}/${other}`)];
  const lines = [row(header), rule(header.length)];
  for (const result of rows) {
    const summaries = new Map(sides.map((side) => [side, summarize(result.runs[side])]));
    const ratios = others.map((other) => formatRatio(speedup(medianOf(summaries.get(subject)), medianOf(summaries.get(other)), result.unit)));
    lines.push(row([`${result.title} (${result.unit})`, result.parallelism, ...sides.map((side) => formatCell(summaries.get(side))), ...ratios]));
  }
  return lines.join('\n');
}

/** The spread table of the footer: min–max of every cell. */
export function renderSpread(rows: readonly RowResult[], sides: readonly string[]): string {
  const header = ['workload', ...sides];
  const lines = [row(header), rule(header.length)];
  for (const result of rows) {
    lines.push(row([`${result.title} (${result.unit})`, ...sides.map((side) => formatSpread(summarize(result.runs[side])))]));
  }
  return lines.join('\n');
}
