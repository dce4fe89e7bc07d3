// Random reads in the big file: N readers share a fixed list of seeded, page-aligned offsets; every block
// is compared with the source bytes.
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BIG_FILE, sourceBytes } from '../fixture';
import { forEachLimited } from '../limit';
import { formatSize, MIB } from '../units';
import { combine, runThreads } from '../workers/pool';
import { getBytes } from './store-ops';
import type { Workload } from './workload';

/** Random block reads in the big file. */
export const randomRead: Workload = {
  id: 'random-read',
  unit: 'MiB/s',
  title: (options) => `random ${formatSize(options.blockBytes)} reads in the ${formatSize(options.size)} file (${options.randomReads} reads), cold`,
  parallelism: (options) => `${options.parallel} readers (direct: ${options.parallel} ranged GETs)`,
  async onMount(root, context) {
    const { fixture, options } = context;
    const { seconds, results } = await runThreads({ kind: 'read-ranges', path: path.join(root, BIG_FILE), offsets: fixture.randomOffsets, length: options.blockBytes }, options.parallel, fixture.source, options.blockBytes, options.timeoutMs);
    const { bytes, items } = combine(results);
    if (items !== fixture.randomOffsets.length) throw new Error(`did ${items} of ${fixture.randomOffsets.length} reads`);
    return { value: bytes / MIB / seconds };
  },
  async onStore(store, context) {
    const { fixture, options } = context;
    let wrong = 0;
    const start = performance.now();
    await forEachLimited(fixture.randomOffsets.length, options.parallel, async (index) => {
      const offset = fixture.randomOffsets[index]!;
      const data = await getBytes(store, `${context.keyPrefix}${BIG_FILE}`, { start: offset, end: offset + options.blockBytes });
      if (!data.equals(sourceBytes(fixture, offset, options.blockBytes))) wrong += 1;
    });
    const seconds = (performance.now() - start) / 1000;
    if (wrong > 0) throw new Error(`WRONG DATA: ${wrong} blocks differ from the source`);
    return { value: (fixture.randomOffsets.length * options.blockBytes) / MIB / seconds };
  },
};
