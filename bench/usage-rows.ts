// The mount-cost rows under the speed rows: CPU seconds per GiB moved and peak resident memory of each mount's
// process tree, taken from the runs of the workload they name. The direct side has no mount, so no figure.
import type { MountUsage } from './mount-usage';
import type { BenchOptions, WorkloadId } from './options';
import { cpuSecondsPerGib } from './proc';
import type { Outcome, RowResult, Unit } from './table';
import { MIB } from './units';

/** One mount-cost row: the workload whose runs it measures, and which figure. */
export interface UsageRow {
  workload: WorkloadId;
  metric: 'cpu' | 'rss';
}

/** The mount-cost rows, in table order. */
export const USAGE_ROWS: readonly UsageRow[] = [
  { workload: 'seq-read', metric: 'cpu' },
  { workload: 'random-read', metric: 'cpu' },
  { workload: 'seq-write', metric: 'cpu' },
  { workload: 'seq-read', metric: 'rss' },
];

/** Why a mount-cost cell of a failed run has no figure. */
export const FAILED_RUN = 'no figure: the run failed';

/** Bytes one run of `workload` moves through a side (what CPU per GiB divides by). */
export function movedBytes(workload: WorkloadId, options: BenchOptions): number {
  if (workload === 'random-read') return options.randomReads * options.blockBytes;
  if (workload === 'seq-read' || workload === 'seq-write') return options.size;
  throw new Error(`${workload} has no mount-cost row: add its bytes moved here first`);
}

/** An empty result row for `row`, titled and with its unit. */
export function usageRowResult(row: UsageRow): RowResult {
  const unit: Unit = row.metric === 'cpu' ? 'CPU s/GiB' : 'MiB';
  const title = row.metric === 'cpu' ? `mount CPU (user+system) per GiB moved, ${row.workload}` : `mount peak RSS, ${row.workload}`;
  return { title, unit, parallelism: 'the mount\'s process tree', runs: {} };
}

/** The figure of one run for `row`: from the tree's usage when the run succeeded, else the run's failure. */
export function usageOutcome(row: UsageRow, run: Outcome, usage: MountUsage | undefined, options: BenchOptions): Outcome {
  if (!run.ok) return { ok: false, error: FAILED_RUN };
  if (!usage) return { ok: false, error: 'no figure: the mount process was not known' };
  if (row.metric === 'rss') return { ok: true, value: usage.peakRssBytes / MIB };
  return { ok: true, value: cpuSecondsPerGib(usage.ticks, usage.ticksPerSecond, movedBytes(row.workload, options)) };
}
