// The printed report of the cluster cache bench: the table, then the footer that says how to read and
// reproduce it.
import { formatSize } from '../units';
import type { CacheBenchResult } from './harness';
import { CACHE_COLUMNS, DEFAULT_MOUNT_RAM_CACHE_BYTES, nodeAddress, type CacheBenchOptions, type CacheColumn, type CacheRowGroup } from './options';
import { ceilingNote, renderCacheSpread, renderCacheTable } from './table';

/** Facts gathered around the run, for the footer. */
export interface CacheReportContext {
  command: string;
  machine: string;
  versions: Record<string, string>;
  /** The 1, 5 and 15 minute load averages before and after the run (others' work on the machine shows here). */
  loadBefore: readonly number[];
  loadAfter: readonly number[];
}

/** How each column is set up, for the footer. */
export function columnSettings(options: CacheBenchOptions): Record<CacheColumn, string> {
  const last = nodeAddress(options.nodes - 1);
  const gateway = options.only.includes('gateway');
  const sdk = `a new plain @aws-sdk/client-s3 S3Client per read (path style, SDK defaults otherwise) with ${options.parallel} × ${formatSize(options.rangeBytes)} ranged GetObject calls in flight, each body streamed into its range's buffer, the ranges hashed in order`;
  return {
    'granary+cache': `\`granary mount s3://BUCKET/vol MNT --read-only --cache-peers URLS --cache-token-file FILE\` (RAM copy ${formatSize(DEFAULT_MOUNT_RAM_CACHE_BYTES)} by default) reading through ${options.nodes} ` +
      `\`granary cache serve\` on ${nodeAddress(0)}–${last} (--ram-bytes ${formatSize(options.serverRamBytes)} --disk-bytes ${formatSize(options.serverDiskBytes)} --disk-free-floor 0, disk tier in a fresh temp dir each run)` +
      (gateway ? `; in the S3 gateway rows, no mount: the servers also get \`--s3-listen NODE:PORT --s3-keys-file FILE\` (one key granted the bucket, in a 0600 file of the run's temp dir, removed with it), and the reader is ${sdk}, signed with that key, at ${nodeAddress(0)}'s gateway` : ''),
    granary: '`granary mount s3://BUCKET/vol MNT --read-only`, no cache servers: each mount reads the object store',
    rclone: 'the main bench\'s `rclone mount` (bench/sides/rclone.ts: --vfs-cache-mode writes, else defaults), a fresh cache dir per mount',
    direct: `@aws-sdk/client-s3 through granary's S3Store in the bench process: ${options.parallel} × ${formatSize(options.rangeBytes)} ranged GETs in flight, hashed in order` +
      (gateway ? ` (its GETs take S3Store's lean SigV4 path, not the SDK's GetObject); in the S3 gateway rows, the gateway's client at the object store: ${sdk}` : ''),
    local: 'a copy of the file on the scratch folder\'s local disk, read once to fill the page cache, then read again (timed) by the same reader thread',
  };
}

const load = (values: readonly number[]) => values.map((value) => value.toFixed(2)).join(' ');

/** The markdown report: table, ceiling, command, machine, load, versions, columns, method, spread and notes. */
export function renderCacheReport(result: CacheBenchResult, options: CacheBenchOptions, context: CacheReportContext): string {
  const settings = columnSettings(options);
  const used = CACHE_COLUMNS.filter((column) => result.rows.some((row) => row.columns.includes(column)));
  const ceiling = ceilingNote(result.rows);
  const runNotes = notesPerRun(result);
  return [
    renderCacheTable(result.rows, CACHE_COLUMNS),
    '',
    ...(ceiling ? [`Ceiling: ${ceiling}.`, ''] : []),
    `Command: \`${context.command}\``,
    '',
    `Machine: ${context.machine}; load average (1, 5, 15 min) ${load(context.loadBefore)} before, ${load(context.loadAfter)} after`,
    '',
    `Versions: ${Object.entries(context.versions).map(([name, version]) => `${name} ${version}`).join(', ')}`,
    '',
    'Columns:',
    ...used.map((column) => `- ${column}: ${settings[column]}`),
    '',
    'How to read it:',
    `- Each cell is the median of ${options.runs} run(s); \`error: reason\` if any run of the cell failed; \`·\` where the row has no such column. The last column is granary+cache's advantage over each cell named (>1× = granary+cache better: faster, or fewer bytes moved).`,
    '- Every read is checked: each reader\'s sha256 against the source\'s; a wrong byte fails the run (WRONG DATA) and the bench exits 1.',
    '- Before every measurement the page cache is dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) and the origin\'s file is read back into it, so the origin serves from RAM alike for every side; every mount is new.',
    ...method(options),
    '- The machine is small and shared (2 cores for the bench, the mounts, the cache servers, the relay and the server): compare ratios and medians of the same run, and look at the spread and the load average.',
    ...result.notes.map((note) => `- ${note}`),
    '',
    'Spread (min–max of the runs of each cell):',
    '',
    renderCacheSpread(result.rows, CACHE_COLUMNS),
    ...(runNotes.length > 0 ? ['', 'Notes per run:', ...runNotes.map((note) => `- ${note}`)] : []),
  ].join('\n');
}

/**
 * One line per measurement with a note: `rows column run N: note`. The rows one measurement filled share its note
 * and come one after another in `raw`; two measurements whose notes read alike (the mount's and the S3 gateway's cold
 * reads) stay two lines.
 */
export function notesPerRun(result: Pick<CacheBenchResult, 'raw'>): string[] {
  const lines: Array<{ rows: string[]; line: (rows: string) => string }> = [];
  let previous: CacheBenchResult['raw'][number] | undefined;
  for (const run of result.raw) {
    const same = previous?.note !== undefined && previous.note === run.note && previous.column === run.column && previous.run === run.run;
    previous = run;
    if (!run.note) continue;
    if (same) lines.at(-1)!.rows.push(run.row);
    else lines.push({ rows: [run.row], line: (rows: string) => `${rows} ${run.column} run ${run.run}: ${run.note}` });
  }
  return lines.map((entry) => entry.line(entry.rows.join(' + ')));
}

/** The lines of "How to read it" on the rows that ran. */
function method(options: CacheBenchOptions): string[] {
  const about = (group: CacheRowGroup, text: string) => (options.only.includes(group) ? [`- ${text}`] : []);
  return [
    ...about('cold', 'Cold: new cache servers on empty disk dirs, a new mount, 1 reader.'),
    ...about('warm-ram', 'Warm RAM: the same servers after the cold read, a new mount (its own RAM copy empty).'),
    ...about('warm-disk', 'Warm disk: the servers restarted (SIGTERM, so their disk writes finished; RAM empty) and the page cache dropped, a new mount.'),
    ...(options.only.includes('warm-ram') || options.only.includes('warm-disk')
      ? ['- Each warm read is checked against the servers\' /metrics: at least 95% of the file served from the tier claimed and nothing filled from the object store, else the cell is an error (the counts are in the notes per run).']
      : []),
    ...about('gateway', 'S3 gateway: new cache servers on empty disk dirs, each also serving the S3 API; a new SDK client reads the file through the gateway of one node (its server fetches every block from the block\'s owner on the ring, its own from its store), then a second new client reads it again (warm: at least the whole file sent by the gateways, nothing filled from the object store, else the cell is an error). ' +
      'Direct in these rows is the same SDK code reading the object store itself, so the ratio is the gateway\'s cost alone. "Read from the object store" is what the server sent through the relay during the read ÷ the file size; it includes the HEAD the gateway asks the object store for each GetObject (to learn the version it serves).'),
    ...about('fan-out', `Fan-out: ${options.nodes} nodes × ${options.readersPerNode} readers start at once, one mount per node (granary+cache: on new, empty cache servers). ` +
      '"Read from the object store" is what the server sent through the relay during the reads, ÷ the file size: 1× = the bucket was read once for the whole cluster. ' +
      'It counts whole responses, also the part of a range a client abandoned: when readers of one file seek, rclone opens a new range to the end of its read chunk and drops the old one (visible with its --dump headers).'),
    ...about('hot-blocks', `Hot blocks: ${options.hotReaders} readers on one node, reader i starting once reader i-1 has read ${formatSize(options.staggerBytes)}, over cache servers warm in RAM; ` +
      'first all on one new mount (as the pods of a node share the node\'s mount), then each on a new mount of its own. ' +
      'The readers open with O_DIRECT so that the kernel\'s page cache, which would otherwise serve a later reader of the same mount, is out of the way (as when a pod\'s page cache is reclaimed under its memory limit): ' +
      `every read reaches the mount, and the mount's RAM copy (${formatSize(DEFAULT_MOUNT_RAM_CACHE_BYTES)} by default) is what keeps a block for the next reader. ` +
      `"Served per byte read" = bytes all cache servers served ÷ bytes the readers read: 1/${options.hotReaders} = each block fetched from its owner once for the node, 1 = once per reader.`),
    ...about('ceiling', 'Ceiling: the same reader thread (1 MiB reads, sha256 of every byte) on a local file already in the page cache: the most any read path through the kernel gets on this machine.'),
  ];
}
