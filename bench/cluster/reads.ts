// The reads the cluster rows time: whole-file sequential readers on mounts (one, several at once, or
// staggered), and the SDK's ranged GETs; every reader's bytes are checked against the source.
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parseContentRange } from '../../src/objectstore/s3-get';
import type { ObjectStore } from '../../src/objectstore/store';
import type { Fixture } from '../fixture';
import { readInOrder } from '../workloads/store-ops';
import { combine, runThreadTasks, type StartPlan } from '../workers/pool';
import type { WorkerResult } from '../workers/tasks';

/** What a timed read did: bytes read by all readers, and seconds from the first start to the last byte. */
export interface TimedRead {
  bytes: number;
  seconds: number;
}

/** How the readers read: sizes, patience, and whether they start staggered and bypass the page cache. */
export interface ReadPlan extends StartPlan {
  blockBytes: number;
  timeoutMs: number;
  /** Open with O_DIRECT: every read reaches the filesystem. */
  direct?: boolean;
}

/** Throws WRONG DATA unless `result` read the whole file and its sha256 is the source's. */
export function checkWholeFile(result: Pick<WorkerResult, 'bytes' | 'sha256'>, fixture: Pick<Fixture, 'size' | 'sha256'>, who: string): void {
  if (result.bytes !== fixture.size) throw new Error(`WRONG DATA: ${who} read ${result.bytes} of ${fixture.size} bytes`);
  if (result.sha256 !== fixture.sha256) throw new Error(`WRONG DATA: ${who}: sha256 ${result.sha256?.slice(0, 12)}… of what was read is not the source's ${fixture.sha256.slice(0, 12)}…`);
}

/** One reader thread per file in `files` (paths to the big file, on one mount or several), each reading it whole. */
export async function readWholeFiles(files: readonly string[], fixture: Fixture, plan: ReadPlan): Promise<TimedRead> {
  const tasks = files.map((path) => ({ kind: 'read-sequential' as const, path, ...(plan.direct && { direct: true }) }));
  const { seconds, results } = await runThreadTasks(tasks, fixture.source, plan.blockBytes, plan.timeoutMs, plan);
  const { bytes } = combine(results);
  results.forEach((result, index) => checkWholeFile(result, fixture, `reader ${index + 1} (${files[index]})`));
  return { bytes, seconds };
}

/** The SDK straight at the object: `parallel` ranged GETs of `rangeBytes` in flight, hashed in order. */
export async function readThroughStore(store: Pick<ObjectStore, 'get'>, key: string, fixture: Fixture, rangeBytes: number, parallel: number): Promise<TimedRead> {
  const start = performance.now();
  const hash = createHash('sha256');
  const bytes = await readInOrder(store, key, fixture.size, rangeBytes, parallel, (data) => hash.update(data));
  const seconds = (performance.now() - start) / 1000;
  checkWholeFile({ bytes, sha256: hash.digest('hex') }, fixture, 'the SDK');
  return { bytes, seconds };
}

/**
 * A bucket read with a plain @aws-sdk/client-s3 client's GetObject, as an S3 user's program reads it (a model
 * loader pointed at the S3 gateway, or at the object store): the response body is the SDK's stream, unread until
 * the caller reads it. Only get() of an ObjectStore, for readThroughStore.
 */
export function sdkGetter(client: S3Client, bucket: string): Pick<ObjectStore, 'get'> {
  return {
    async get(key, options = {}) {
      const { range } = options;
      const output = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(range && { Range: `bytes=${range.start}-${range.end - 1}` }) }));
      if (!(output.Body instanceof Readable)) throw new Error(`GetObject of ${key} returned no readable body`);
      const answered = parseContentRange(output.ContentRange);
      const size = answered?.size ?? output.ContentLength ?? 0;
      return { body: output.Body, size, etag: output.ETag ?? '', range: answered?.range ?? { start: 0, end: size } };
    },
  };
}
