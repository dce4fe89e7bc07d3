// groupcache's singleflight: concurrent callers asking for the same key share one call (one origin fill,
// one disk write), and the next caller after it settles runs a fresh one. Nothing is cached here: a
// failure is shared with the callers who were waiting for it, and forgotten. Generic leaf: imports nothing
// from src/.

/** Runs at most one call per key at a time; callers arriving while it runs get its result. */
export class SingleFlight<T> {
  private readonly calls = new Map<string, Promise<T>>();

  /** Calls running now (one per key), for metrics. */
  get inFlight(): number {
    return this.calls.size;
  }

  /** Whether a call for `key` is running now (a run() would join it). */
  has(key: string): boolean {
    return this.calls.has(key);
  }

  /** The result of `fn`, or of the call already running for `key`; the key is free again once it settles. */
  run(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.calls.get(key);
    if (running !== undefined) return running;
    let started: Promise<T>;
    try {
      started = fn();
    } catch (error) {
      started = Promise.reject(error);
    }
    // The entry goes before any caller sees the result, so a caller reacting to it starts a new call.
    const call = started.finally(() => {
      if (this.calls.get(key) === call) this.calls.delete(key);
    });
    this.calls.set(key, call);
    return call;
  }
}
