// `ls -lR` of the tree of small files (names and attributes of every file), cold; directly, a paged
// listing of the whole prefix (which returns sizes and dates too). Checked by counting the files.
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FILES_DIR, FILES_PER_DIR } from '../fixture';
import { run } from '../exec';
import type { Workload } from './workload';

function checkCount(found: number, expected: number): void {
  if (found !== expected) throw new Error(`WRONG LISTING: ${found} files listed, ${expected} exist`);
}

/** Listing the tree of small files. */
export const listTree: Workload = {
  id: 'ls-lR',
  unit: 's',
  title: (options) => `ls -lR of ${options.files} files in ${Math.ceil(options.files / FILES_PER_DIR)} dirs, cold`,
  parallelism: () => '1 (ls -lR; direct: paged LIST of the prefix)',
  async onMount(root, context) {
    const start = performance.now();
    const result = await run('ls', ['-lR', path.join(root, FILES_DIR)], { timeoutMs: context.options.timeoutMs });
    const seconds = (performance.now() - start) / 1000;
    if (result.code !== 0) throw new Error(`ls -lR exited ${result.code}: ${result.stderr.trim()}`);
    checkCount(result.stdout.split('\n').filter((line) => line.startsWith('-')).length, context.fixture.files.length);
    return { value: seconds };
  },
  async onStore(store, context) {
    const prefix = `${context.keyPrefix}${FILES_DIR}/`;
    const start = performance.now();
    let found = 0;
    let token: string | undefined;
    do {
      const page = await store.list({ prefix, ...(token && { continuationToken: token }) });
      found += page.objects.length;
      token = page.nextToken;
    } while (token);
    const seconds = (performance.now() - start) / 1000;
    checkCount(found, context.fixture.files.length);
    return { value: seconds };
  },
};
