// Bounded concurrency over a list or a stream of items: the one worker pool of the project (disk scans, directory
// renames, part uploads and copies, warm-up). Generic leaf: imports nothing from src/.

/** Options of forEachLimited. */
export interface ForEachLimitedOptions {
  /** Once aborted, no new item starts; the call still waits for those running, then resolves. */
  signal?: AbortSignal;
}

/**
 * Runs `task` over `items` with at most `limit` calls in flight, taking the items in order (an async iterable is
 * pulled lazily, one item per free slot). After the first failure (of a task, or of the iterable itself) no new
 * item starts, and it rejects with that failure once every started task has settled: nothing is left running
 * behind the caller's back.
 */
export async function forEachLimited<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  task: (item: T) => Promise<void>,
  options: ForEachLimitedOptions = {},
): Promise<void> {
  if (!(Number.isInteger(limit) && limit > 0)) throw new RangeError(`the concurrency limit must be a positive integer, got ${limit}`);
  const iterator: Iterator<T> | AsyncIterator<T> = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  const { signal } = options;
  let failure: { error: unknown } | undefined;
  let exhausted = false;
  const stopped = () => failure !== undefined || exhausted || signal?.aborted === true;
  const worker = async (): Promise<void> => {
    while (!stopped()) {
      let next: IteratorResult<T>;
      try {
        // Concurrent next() calls on an async generator queue up: each item still goes to exactly one worker.
        next = await iterator.next();
      } catch (error) {
        failure ??= { error };
        return;
      }
      if (next.done) {
        exhausted = true;
        return;
      }
      if (failure !== undefined || signal?.aborted) return;
      try {
        await task(next.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  // Stopped early: let the iterable release what it holds (a listing in progress, say), as a for-of would.
  if (!exhausted) await iterator.return?.();
  if (failure) throw failure.error;
}
