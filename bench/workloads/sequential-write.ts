// Sequential write of a new file as big as the big file, of random bytes: one writer of 1 MiB blocks on a
// mount, timed until close returns and the object is in the bucket (durable); parallel multipart directly.
// Every run's object is then read back and checked by sha256 (untimed).
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { waitUntil } from '../exec';
import { forEachLimited } from '../limit';
import { sourceBytes } from '../fixture';
import { formatSize, MIB } from '../units';
import { combine, runThreads } from '../workers/pool';
import { objectSha256 } from './store-ops';
import type { RunContext, Workload } from './workload';

/** How often to ask the bucket whether a closed file has arrived. */
export const DURABLE_POLL_MS = 20;

const fileName = (context: RunContext) => `written-${context.side}-${context.run}.bin`;

async function exists(context: RunContext, key: string): Promise<boolean> {
  try {
    return (await context.verifier.head(key)).size === context.fixture.size;
  } catch {
    return false;
  }
}

async function checkWritten(context: RunContext): Promise<void> {
  const key = `${context.keyPrefix}${fileName(context)}`;
  const { sha256, size } = await objectSha256(context.verifier, key, context.options.rangeBytes, context.options.parallel);
  if (size !== context.fixture.size || sha256 !== context.fixture.sha256) {
    throw new Error(`WRONG DATA: the object written has ${size} bytes and sha256 ${sha256.slice(0, 12)}…, not the ${context.fixture.size} bytes written`);
  }
}

/** Sequential write of a new file, until durable. */
export const sequentialWrite: Workload = {
  id: 'seq-write',
  unit: 'MiB/s',
  uploads: true,
  title: (options) => `sequential write of a new ${formatSize(options.size)} file, until durable`,
  parallelism: (options) => `1 writer, ${formatSize(options.blockBytes)} writes; direct: ${options.parallel} × ${formatSize(options.rangeBytes)} parts`,
  async onMount(root, context) {
    const key = `${context.keyPrefix}${fileName(context)}`;
    const { seconds: closed, results } = await runThreads({ kind: 'write-sequential', path: path.join(root, fileName(context)), length: context.fixture.size }, 1, context.fixture.source, context.options.blockBytes, context.options.timeoutMs);
    combine(results);
    // The threads' clock starts at `go`; the time to reach the bucket after close is added to it.
    const closeReturned = performance.now();
    await waitUntil(() => exists(context, key), context.options.timeoutMs, () => `${key} did not reach the bucket within ${context.options.timeoutMs / 1000} s of close`);
    const seconds = closed + (performance.now() - closeReturned) / 1000;
    await checkWritten(context);
    return { value: context.fixture.size / MIB / seconds, note: `close returned after ${closed.toFixed(2)} s, durable after ${seconds.toFixed(2)} s` };
  },
  async onStore(store, context) {
    const key = `${context.keyPrefix}${fileName(context)}`;
    const start = performance.now();
    const upload = await store.createMultipartUpload(key);
    const partBytes = context.options.rangeBytes;
    try {
      await forEachLimited(Math.ceil(context.fixture.size / partBytes), context.options.parallel, (index) => {
        const offset = index * partBytes;
        return upload.uploadPart(index + 1, sourceBytes(context.fixture, offset, Math.min(partBytes, context.fixture.size - offset)));
      });
      await upload.complete();
    } catch (error) {
      await upload.abort().catch(() => undefined);
      throw error;
    }
    const seconds = (performance.now() - start) / 1000;
    await checkWritten(context);
    return { value: context.fixture.size / MIB / seconds };
  },
  async afterRun(context) {
    await context.verifier.delete(`${context.keyPrefix}${fileName(context)}`);
  },
};
