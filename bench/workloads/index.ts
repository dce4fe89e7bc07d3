// The rows of the table, in order.
import type { WorkloadId } from '../options';
import { listTree } from './list-tree';
import { randomRead } from './random-read';
import { sequentialRead } from './sequential-read';
import { sequentialWrite } from './sequential-write';
import { smallFiles } from './small-files';
import type { Workload } from './workload';

/** Every workload, by id. */
export const WORKLOADS: Record<WorkloadId, Workload> = {
  'seq-read': sequentialRead,
  'seq-write': sequentialWrite,
  'small-files': smallFiles,
  'ls-lR': listTree,
  'random-read': randomRead,
};
