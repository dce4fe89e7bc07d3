// The printed report: the table, then the footer that says how to read and reproduce it.
import type { BenchResult } from './harness';
import { RSS_POLL_MS } from './mount-usage';
import type { BenchOptions } from './options';
import { renderSpread, renderTable } from './table';

/** Facts gathered before the run, for the footer. */
export interface ReportContext {
  command: string;
  machine: string;
  versions: Record<string, string>;
  /** Each side's setup, by name, in column order. */
  settings: Record<string, string>;
}

/** The markdown report: table, command, machine, versions, sides, method, spread and notes. */
export function renderReport(result: BenchResult, options: BenchOptions, context: ReportContext): string {
  const sides = Object.keys(context.settings);
  const others = ['direct', 'rclone', 's3fs'].filter((side) => sides.includes(side));
  const runNotes = result.raw.filter((run) => run.note).map((run) => `${run.workload} ${run.side} run ${run.run}: ${run.note}`);
  return [
    renderTable(result.rows, sides, 'granary', others),
    '',
    `Command: \`${context.command}\``,
    '',
    `Machine: ${context.machine}`,
    '',
    `Versions: ${Object.entries(context.versions).map(([name, version]) => `${name} ${version}`).join(', ')}`,
    '',
    'Sides:',
    ...sides.map((side) => `- ${side}: ${context.settings[side]}`),
    '',
    'How to read it:',
    `- Each cell is the median of ${options.runs} run(s); a cell shows \`error: reason\` if any of its runs failed (a wrong byte fails the run).`,
    '- MiB/s and files/s: higher is better; s: lower is better. Ratios are speed-ups of granary over the other side whatever the unit: >1× = granary faster.',
    '- Every run is cold: `sync; echo 3 > /proc/sys/vm/drop_caches`, then the origin\'s files are read once into the page cache, then a fresh mount. ' +
      'So the origin serves from RAM: its page cache makes it fast, the same for every side, and the table measures the client, not the disk.',
    '- Reads are checked: sha256 of the sequential read, each small file and each random block compared with the source bytes; the write row reads the object back (untimed) and compares its sha256.',
    '- The write row is timed until close returned and the object is in the bucket (durable); granary\'s close waits for the upload by design, rclone uploads after close.',
    '- Mount cost rows: CPU (user+system) of the mount\'s whole process tree (granary\'s holder and its serving child; children reaped since count through ' +
      'their parent\'s cutime/cstime), read from /proc/PID/stat just before and just after the measured part, divided by the GiB the run moved; ' +
      `peak RSS = the highest sum of VmRSS over the tree, polled every ${RSS_POLL_MS} ms during the run. The direct side has no mount: \`–\`. Ratios: >1× = granary cheaper.`,
    '- On a mount, readers and writers are worker threads doing blocking read()/write() of the given size, so N threads are N requests in the filesystem; direct runs in the bench process on the SDK.',
    ...result.notes.map((note) => `- ${note}`),
    '',
    'Spread (min–max of the runs of each cell):',
    '',
    renderSpread(result.rows, sides),
    ...(runNotes.length > 0 ? ['', 'Notes per run:', ...runNotes.map((note) => `- ${note}`)] : []),
  ].join('\n');
}
