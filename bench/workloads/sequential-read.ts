// Sequential read of the big file, cold: one reader on a mount (as dd, cp or a model loader would), the
// SDK's parallel ranged GETs directly. Checked by sha256 of every byte read.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BIG_FILE } from '../fixture';
import { formatSize, MIB } from '../units';
import { combine, runThreads } from '../workers/pool';
import { readInOrder } from './store-ops';
import type { RunContext, Workload } from './workload';

function check(bytes: number, sha256: string | undefined, context: RunContext): void {
  if (bytes !== context.fixture.size) throw new Error(`WRONG DATA: read ${bytes} of ${context.fixture.size} bytes`);
  if (sha256 !== context.fixture.sha256) throw new Error(`WRONG DATA: sha256 ${sha256?.slice(0, 12)}… of what was read is not the source's ${context.fixture.sha256.slice(0, 12)}…`);
}

/** Sequential read of the big file. */
export const sequentialRead: Workload = {
  id: 'seq-read',
  unit: 'MiB/s',
  title: (options) => `sequential read of a ${formatSize(options.size)} file, cold`,
  parallelism: (options) => `1 reader, ${formatSize(options.blockBytes)} reads; direct: ${options.parallel} × ${formatSize(options.rangeBytes)} ranged GETs`,
  async onMount(root, context) {
    const { seconds, results } = await runThreads({ kind: 'read-sequential', path: path.join(root, BIG_FILE) }, 1, context.fixture.source, context.options.blockBytes, context.options.timeoutMs);
    const { bytes } = combine(results);
    check(bytes, results[0]?.sha256, context);
    return { value: bytes / MIB / seconds };
  },
  async onStore(store, context) {
    const start = performance.now();
    const hash = createHash('sha256');
    const bytes = await readInOrder(store, `${context.keyPrefix}${BIG_FILE}`, context.fixture.size, context.options.rangeBytes, context.options.parallel, (data) => hash.update(data));
    const seconds = (performance.now() - start) / 1000;
    check(bytes, hash.digest('hex'), context);
    return { value: bytes / MIB / seconds };
  },
};
