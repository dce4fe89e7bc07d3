// Reading the tree of small files: N readers each take the next file and read it whole; every file is
// compared with its source bytes.
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sourceBytes } from '../fixture';
import { forEachLimited } from '../limit';
import { formatSize } from '../units';
import { combine, runThreads } from '../workers/pool';
import { getBytes } from './store-ops';
import type { Workload } from './workload';

/** Reading every small file once. */
export const smallFiles: Workload = {
  id: 'small-files',
  unit: 'files/s',
  title: (options) => `read ${options.files} × ${formatSize(options.fileSize)} files, cold`,
  parallelism: (options) => `${options.parallel} readers (direct: ${options.parallel} GETs)`,
  async onMount(root, context) {
    const { fixture } = context;
    const paths = fixture.files.map((file) => path.join(root, file));
    const { seconds, results } = await runThreads({ kind: 'read-files', paths, offsets: fixture.fileOffsets, fileSize: fixture.fileSize }, context.options.parallel, fixture.source, context.options.blockBytes, context.options.timeoutMs);
    const { items } = combine(results);
    if (items !== fixture.files.length) throw new Error(`read ${items} of ${fixture.files.length} files`);
    return { value: items / seconds };
  },
  async onStore(store, context) {
    const { fixture } = context;
    let wrong = 0;
    const start = performance.now();
    await forEachLimited(fixture.files.length, context.options.parallel, async (index) => {
      const data = await getBytes(store, `${context.keyPrefix}${fixture.files[index]!}`);
      if (!data.equals(sourceBytes(fixture, fixture.fileOffsets[index]!, fixture.fileSize))) wrong += 1;
    });
    const seconds = (performance.now() - start) / 1000;
    if (wrong > 0) throw new Error(`WRONG DATA: ${wrong} files differ from the source`);
    return { value: fixture.files.length / seconds };
  },
};
