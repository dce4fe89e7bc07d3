// The rows of the cluster cache table: what each measures, in which unit, in which columns, and what
// granary+cache is compared with.
import { formatSize } from '../units';
import { DEFAULT_MOUNT_RAM_CACHE_BYTES, type CacheBenchOptions, type CacheColumn, type CacheRowGroup } from './options';

/** One row of the table. */
export type CacheRowId =
  | 'cold'
  | 'warm-ram'
  | 'warm-disk'
  | 'gateway-cold'
  | 'gateway-warm'
  | 'gateway-cold-origin'
  | 'gateway-warm-origin'
  | 'fan-out-origin'
  | 'fan-out-speed'
  | 'hot-served'
  | 'hot-speed'
  | 'hot-alone-served'
  | 'hot-alone-speed'
  | 'page-cache';

/** What a row's number counts: throughput, bytes read from the object store per byte of the file, or bytes served per byte read. */
export type CacheUnit = 'MiB/s' | '× file' | 'served ÷ read';

/** Whether a bigger number is better (throughput) or worse (bytes moved). */
export type Better = 'higher' | 'lower';

/** granary+cache's cell against another cell of the table (same row or not). */
export interface Comparison {
  /** How the other cell is named in the comparison column. */
  label: string;
  row: CacheRowId;
  column: CacheColumn;
}

/** A row, before it is run. */
export interface CacheRowSpec {
  id: CacheRowId;
  group: CacheRowGroup;
  title: string;
  unit: CacheUnit;
  better: Better;
  /** Readers at once, and how they read. */
  readers: string;
  /** The columns this row has a number in. */
  columns: CacheColumn[];
  comparisons: Comparison[];
}

const MOUNTS_AND_SDK: CacheColumn[] = ['granary+cache', 'granary', 'rclone'];

/** Every row, in table order, worded for these options. */
export function cacheRows(options: CacheBenchOptions): CacheRowSpec[] {
  const file = formatSize(options.size);
  const read = formatSize(options.blockBytes);
  const fanOutReaders = options.nodes * options.readersPerNode;
  const fanOut = `${options.nodes} nodes × ${options.readersPerNode} readers`;
  const hot = `${options.hotReaders} on 1 node, ${formatSize(options.staggerBytes)} apart, O_DIRECT`;
  const shared = `readers share the node's mount (RAM copy ${formatSize(DEFAULT_MOUNT_RAM_CACHE_BYTES)})`;
  const alone = 'each reader on a mount of its own (no shared copy)';
  const versusCold: Comparison[] = [{ label: 'cold granary', row: 'cold', column: 'granary' }, { label: 'cold rclone', row: 'cold', column: 'rclone' }];
  const getObjects = `${options.parallel} × ${formatSize(options.rangeBytes)} ranged GetObject in flight`;
  const gateway = 'SDK through the S3 gateway';
  return [
    {
      id: 'cold', group: 'cold', title: `cold read of a ${file} file, cache servers empty`, unit: 'MiB/s', better: 'higher',
      readers: `1, ${read} reads; direct: ${options.parallel} × ${formatSize(options.rangeBytes)} GETs`,
      columns: [...MOUNTS_AND_SDK, 'direct'],
      comparisons: [{ label: 'granary', row: 'cold', column: 'granary' }, { label: 'rclone', row: 'cold', column: 'rclone' }, { label: 'direct', row: 'cold', column: 'direct' }],
    },
    {
      id: 'warm-ram', group: 'warm-ram', title: 'warm read from the RAM tier, new mount', unit: 'MiB/s', better: 'higher', readers: `1, ${read} reads`,
      columns: ['granary+cache'], comparisons: [...versusCold, { label: 'page-cache read', row: 'page-cache', column: 'local' }],
    },
    {
      id: 'warm-disk', group: 'warm-disk', title: 'warm read from the disk tier (servers restarted, page cache dropped), new mount', unit: 'MiB/s', better: 'higher', readers: `1, ${read} reads`,
      columns: ['granary+cache'], comparisons: versusCold,
    },
    {
      id: 'gateway-cold', group: 'gateway', title: `${gateway}: cold read of the ${file} file, cache servers empty`, unit: 'MiB/s', better: 'higher',
      readers: `1 @aws-sdk/client-s3 client, ${getObjects}, bodies streamed, hashed in order; direct: the same at the object store`,
      columns: ['granary+cache', 'direct'],
      comparisons: [{ label: 'direct', row: 'gateway-cold', column: 'direct' }, { label: 'cold mount', row: 'cold', column: 'granary+cache' }],
    },
    {
      id: 'gateway-warm', group: 'gateway', title: `${gateway}: warm read (the same read again, new client)`, unit: 'MiB/s', better: 'higher',
      readers: `1 @aws-sdk/client-s3 client, ${getObjects}`, columns: ['granary+cache'],
      comparisons: [{ label: 'direct', row: 'gateway-cold', column: 'direct' }, { label: 'warm-RAM mount', row: 'warm-ram', column: 'granary+cache' }],
    },
    {
      id: 'gateway-cold-origin', group: 'gateway', title: `${gateway}, cold read: read from the object store`, unit: '× file', better: 'lower',
      readers: 'the cold read above; direct: its read', columns: ['granary+cache', 'direct'],
      comparisons: [{ label: 'direct', row: 'gateway-cold-origin', column: 'direct' }],
    },
    {
      id: 'gateway-warm-origin', group: 'gateway', title: `${gateway}, warm read: read from the object store`, unit: '× file', better: 'lower',
      readers: 'the warm read above', columns: ['granary+cache'], comparisons: [],
    },
    {
      id: 'fan-out-origin', group: 'fan-out', title: `fan-out, ${fanOut}, all at once: read from the object store`, unit: '× file', better: 'lower',
      readers: `${fanOutReaders}, one mount per node`, columns: MOUNTS_AND_SDK,
      comparisons: [{ label: 'granary', row: 'fan-out-origin', column: 'granary' }, { label: 'rclone', row: 'fan-out-origin', column: 'rclone' }],
    },
    {
      id: 'fan-out-speed', group: 'fan-out', title: `fan-out, ${fanOut}: aggregate`, unit: 'MiB/s', better: 'higher',
      readers: `${fanOutReaders}, one mount per node`, columns: MOUNTS_AND_SDK,
      comparisons: [{ label: 'granary', row: 'fan-out-speed', column: 'granary' }, { label: 'rclone', row: 'fan-out-speed', column: 'rclone' }],
    },
    {
      id: 'hot-served', group: 'hot-blocks', title: `hot blocks, ${shared}: cache servers served per byte read`, unit: 'served ÷ read', better: 'lower',
      readers: hot, columns: ['granary+cache'], comparisons: [{ label: 'own mounts', row: 'hot-alone-served', column: 'granary+cache' }],
    },
    {
      id: 'hot-speed', group: 'hot-blocks', title: `hot blocks, ${shared}: aggregate`, unit: 'MiB/s', better: 'higher',
      readers: hot, columns: ['granary+cache'], comparisons: [{ label: 'own mounts', row: 'hot-alone-speed', column: 'granary+cache' }],
    },
    {
      id: 'hot-alone-served', group: 'hot-blocks', title: `hot blocks, ${alone}: cache servers served per byte read`, unit: 'served ÷ read', better: 'lower',
      readers: hot, columns: ['granary+cache'], comparisons: [],
    },
    {
      id: 'hot-alone-speed', group: 'hot-blocks', title: `hot blocks, ${alone}: aggregate`, unit: 'MiB/s', better: 'higher',
      readers: hot, columns: ['granary+cache'], comparisons: [],
    },
    {
      id: 'page-cache', group: 'ceiling', title: 'the ceiling: the same file from the local page cache (2nd read of a local file)', unit: 'MiB/s', better: 'higher',
      readers: `1, ${read} reads`, columns: ['local'], comparisons: [],
    },
  ];
}

/** The rows of the chosen groups, in table order. */
export function selectedRows(options: CacheBenchOptions): CacheRowSpec[] {
  return cacheRows(options).filter((row) => options.only.includes(row.group));
}
