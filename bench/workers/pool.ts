// Starts N threads on a mount, lets them all go at once (or one after the other, staggered by bytes read),
// and times them until the last one is done.
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { startStaggered } from './stagger';
import type { GoMessage, WorkerInput, WorkerMessage, WorkerResult, WorkerTask } from './tasks';

/** The compiled thread script (the bench runs from dist/). */
export const WORKER_SCRIPT = path.join(__dirname, 'fs-worker.js');

/** The combined outcome of a run of threads. */
export interface PoolResult {
  /** From `go` to the last thread's result. */
  seconds: number;
  results: WorkerResult[];
}

/** How the threads of a run start: all at once, or each once the one before it has read `staggerBytes`. */
export interface StartPlan {
  staggerBytes?: number;
}

/** Runs `task` on `threads` threads; rejects with the first thread's failure, or after `timeoutMs`. */
export function runThreads(task: WorkerTask, threads: number, source: SharedArrayBuffer, blockBytes: number, timeoutMs: number): Promise<PoolResult> {
  return runThreadTasks(Array.from({ length: threads }, () => task), source, blockBytes, timeoutMs);
}

/**
 * Runs one thread per task (timed from the first `go` to the last result); with `plan.staggerBytes`, thread
 * i starts once thread i - 1 has read that many bytes (or finished). Rejects with the first thread's
 * failure, or after `timeoutMs`.
 */
export async function runThreadTasks(tasks: readonly WorkerTask[], source: SharedArrayBuffer, blockBytes: number, timeoutMs: number, plan: StartPlan = {}): Promise<PoolResult> {
  const counter = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
  const progressBuffer = new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT * tasks.length);
  const progress = new BigInt64Array(progressBuffer);
  const workers: Worker[] = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  try {
    const ready: Array<Promise<void>> = [];
    const done: Array<Promise<WorkerResult>> = [];
    const finished = tasks.map(() => false);
    tasks.forEach((task, index) => {
      const worker = new Worker(WORKER_SCRIPT, { workerData: { source, counter, blockBytes, progress: progressBuffer, index, task } satisfies WorkerInput });
      workers.push(worker);
      let readyCallbacks!: { resolve: () => void; reject: (error: Error) => void };
      ready.push(new Promise<void>((resolve, reject) => { readyCallbacks = { resolve, reject }; }));
      done.push(new Promise<WorkerResult>((resolve, reject) => {
        const fail = (error: Error) => { readyCallbacks.reject(error); reject(error); };
        worker.on('message', (message: WorkerMessage) => {
          if (message.type === 'ready') readyCallbacks.resolve();
          else if (message.type === 'done') {
            finished[index] = true;
            resolve(message.result);
          } else fail(new Error(message.error));
        });
        worker.once('error', fail);
        worker.once('exit', (code) => fail(new Error(`reader thread exited (${code}) before it finished`)));
      }));
    });
    // A thread that fails before `go` must not leave the others' promises unobserved.
    done.forEach((promise) => promise.catch(() => undefined));
    await Promise.all(ready);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000} s`)), timeoutMs);
    });
    const start = performance.now();
    void startStaggered(workers.length, plan.staggerBytes ?? 0, {
      progress: (index) => Number(Atomics.load(progress, index)),
      finished: (index) => finished[index] === true,
      stopped: () => stopped,
    }, (index) => workers[index]?.postMessage({ type: 'go' } satisfies GoMessage));
    const results = await Promise.race([Promise.all(done), timeout]);
    return { seconds: (performance.now() - start) / 1000, results };
  } finally {
    stopped = true;
    clearTimeout(timer);
    // Not awaited: a thread stuck in a syscall on a hung mount stops only once the mount is gone.
    for (const worker of workers) void worker.terminate();
  }
}

/** Adds up the threads' results; throws if any read differed from the source. */
export function combine(results: readonly WorkerResult[]): { bytes: number; items: number } {
  const mismatchCount = results.reduce((sum, result) => sum + result.mismatchCount, 0);
  if (mismatchCount > 0) {
    const described = results.flatMap((result) => result.mismatches).slice(0, 3).join('; ');
    throw new Error(`WRONG DATA: ${mismatchCount} reads differ from the source (${described})`);
  }
  return { bytes: results.reduce((sum, r) => sum + r.bytes, 0), items: results.reduce((sum, r) => sum + r.items, 0) };
}
