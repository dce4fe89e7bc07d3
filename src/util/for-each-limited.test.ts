import { forEachLimited } from './for-each-limited';

/** A promise with its resolve and reject exposed: tests decide when each task ends. */
function gate<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

/** Lets every callback already queued run (promise reactions chain through a few microtasks). */
const drain = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('forEachLimited', () => {
  it('runs every item, never more than the limit at once, in order', async () => {
    const gates = Array.from({ length: 5 }, () => gate());
    const started: number[] = [];
    let running = 0;
    let most = 0;
    const done = forEachLimited([0, 1, 2, 3, 4], 2, async (item) => {
      started.push(item);
      most = Math.max(most, ++running);
      await gates[item]!.promise;
      running--;
    });
    await drain();
    expect(started).toEqual([0, 1]);
    gates[1]!.resolve();
    await drain();
    expect(started).toEqual([0, 1, 2]);
    for (const g of gates) g.resolve();
    await done;
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(most).toBe(2);
  });

  it('starts nothing new after a failure and rejects with it once the running tasks settled', async () => {
    const slow = gate();
    const started: number[] = [];
    let settled = false;
    const done = forEachLimited([0, 1, 2, 3], 2, async (item) => {
      started.push(item);
      if (item === 0) {
        await slow.promise;
        settled = true;
      }
      if (item === 1) throw new Error('part 1 failed');
    });
    let outcome: unknown;
    void done.catch((error: unknown) => (outcome = error));
    await drain();
    expect(outcome).toBeUndefined(); // item 0 still runs
    slow.resolve();
    await expect(done).rejects.toThrow('part 1 failed');
    expect(settled).toBe(true);
    expect(started).toEqual([0, 1]);
  });

  it('pulls an async iterable lazily, one item per free slot, and each item goes to one task', async () => {
    let pulled = 0;
    async function* items() {
      for (let i = 0; i < 6; i++) {
        pulled++;
        yield i;
      }
    }
    const gates = Array.from({ length: 6 }, () => gate());
    const seen: number[] = [];
    const done = forEachLimited(items(), 3, async (item) => {
      seen.push(item);
      await gates[item]!.promise;
    });
    await drain();
    expect(pulled).toBe(3);
    for (const g of gates) g.resolve();
    await done;
    expect(seen.sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('rejects with the iterable\'s own failure, after the running tasks settled', async () => {
    const first = gate();
    async function* items() {
      yield 'a';
      throw new Error('the listing failed');
    }
    let finished = false;
    const done = forEachLimited(items(), 2, async () => {
      await first.promise;
      finished = true;
    });
    await drain();
    first.resolve();
    await expect(done).rejects.toThrow('the listing failed');
    expect(finished).toBe(true);
  });

  it('stops taking items once the signal aborts, closes the iterable, and resolves', async () => {
    const controller = new AbortController();
    let closed = false;
    async function* items() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    const seen: number[] = [];
    await forEachLimited(items(), 2, async (item) => {
      seen.push(item);
      if (item === 3) controller.abort();
    }, { signal: controller.signal });
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(closed).toBe(true);
  });

  it('does nothing with no items and refuses a limit below 1', async () => {
    await expect(forEachLimited([], 4, () => Promise.reject(new Error('never')))).resolves.toBeUndefined();
    await expect(forEachLimited([1], 0, async () => undefined)).rejects.toThrow(/positive integer, got 0/);
  });
});
