// A reader thread of the takeover bench: reads one file from start to end in 1 MiB blocking reads, again and again
// until told to stop, and keeps the time each read returned (ms since the epoch, comparable across threads), so the
// bench can tell how long the reads that straddle a kill waited. Each pass's sha256 is checked.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';

/** What a reader is given. */
export interface StallReaderInput {
  file: string;
  sha256: string;
  /** Int32Array of 1 element: a reader stops at the end of its read once it is non-zero. */
  stop: SharedArrayBuffer;
}

/** What a reader reports when it stops. */
export interface StallReaderResult {
  /** When each read returned (ms since the epoch). */
  completions: number[];
  passes: number;
  /** Passes whose bytes were wrong, and calls that failed (with their error). */
  wrongPasses: number;
  errors: string[];
}

const READ_BYTES = 1024 * 1024;
const input = workerData as StallReaderInput;
const stop = new Int32Array(input.stop);
const now = () => performance.timeOrigin + performance.now();
const result: StallReaderResult = { completions: [], passes: 0, wrongPasses: 0, errors: [] };
const buffer = Buffer.allocUnsafe(READ_BYTES);

while (Atomics.load(stop, 0) === 0) {
  let fd: number | undefined;
  try {
    fd = fs.openSync(input.file, 'r');
    const hash = createHash('sha256');
    for (;;) {
      const read = fs.readSync(fd, buffer, 0, READ_BYTES, null);
      result.completions.push(now());
      if (read === 0) break;
      hash.update(buffer.subarray(0, read));
      if (Atomics.load(stop, 0) !== 0) break;
    }
    if (Atomics.load(stop, 0) === 0) {
      result.passes++;
      if (hash.digest('hex') !== input.sha256) result.wrongPasses++;
    }
  } catch (error) {
    result.errors.push((error as Error).message);
  } finally {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch (error) {
        result.errors.push(`close: ${(error as Error).message}`);
      }
    }
  }
}
parentPort?.postMessage(result);
