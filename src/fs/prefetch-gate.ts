// Bounds the listings fetched ahead: at most `concurrency` run at once, at most `maxWaiting` wait for a turn, and
// when more come the oldest waiter gives up its turn (a walk over wide directories keeps only its most recent
// prefetches; a directory whose prefetch gave up is listed by its own read, as without prefetch).

/** Admits prefetches `concurrency` at a time, dropping the oldest waiters beyond `maxWaiting`. */
export class PrefetchGate {
  private running = 0;
  private readonly waiting: Array<(admitted: boolean) => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxWaiting: number,
  ) {}

  /** Runs `task` when a turn comes and resolves with its result, or with undefined when it was dropped while waiting. */
  async run<T>(task: () => Promise<T>): Promise<T | undefined> {
    if (this.running >= this.concurrency) {
      const admitted = await new Promise<boolean>((resolve) => {
        this.waiting.push(resolve);
        while (this.waiting.length > this.maxWaiting) this.waiting.shift()?.(false);
      });
      if (!admitted) return undefined;
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      // The turn passes straight to the next waiter, or frees up.
      const next = this.waiting.shift();
      if (next) next(true);
      else this.running--;
    }
  }
}
