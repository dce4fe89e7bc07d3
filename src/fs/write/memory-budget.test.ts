import { MemoryBudget } from './memory-budget';

describe('MemoryBudget', () => {
  it('grants at once while under the cap and makes the next request wait', async () => {
    const budget = new MemoryBudget(10);
    await budget.acquire(6);
    let granted = false;
    const waiting = budget.acquire(6).then(() => { granted = true; });
    await Promise.resolve();
    expect(granted).toBe(false);
    expect(budget.waiting).toBe(1);
    budget.release(6);
    await waiting;
    expect(granted).toBe(true);
    expect(budget.used).toBe(6);
    expect(budget.peak).toBe(6);
  });

  it('serves waiters in arrival order, so a large request is not overtaken by small ones', async () => {
    const budget = new MemoryBudget(10);
    await budget.acquire(9);
    const order: string[] = [];
    const large = budget.acquire(8).then(() => order.push('large'));
    const small = budget.acquire(1).then(() => order.push('small'));
    await Promise.resolve();
    expect(order).toEqual([]);
    budget.release(9);
    await Promise.all([large, small]);
    expect(order).toEqual(['large', 'small']);
    expect(budget.used).toBe(9);
  });

  it('refuses a request larger than the whole budget and a release of more than was taken', async () => {
    const budget = new MemoryBudget(10);
    await expect(budget.acquire(11)).rejects.toThrow(RangeError);
    expect(() => budget.release(1)).toThrow(/released more/);
  });
});

describe('MemoryBudget: a wait that is given up', () => {
  it('leaves the queue holding nothing when its signal aborts, and the waiters behind it are served', async () => {
    const budget = new MemoryBudget(10);
    await budget.acquire(9);
    const controller = new AbortController();
    const reason = new Error('interrupted');
    const large = budget.acquire(8, controller.signal);
    let smallGranted = false;
    const small = budget.acquire(1).then(() => (smallGranted = true));
    await Promise.resolve();
    expect(budget.waiting).toBe(2);
    controller.abort(reason);
    await expect(large).rejects.toBe(reason);
    // The large request no longer holds the queue: the small one fits beside the 9 bytes held.
    await small;
    expect(smallGranted).toBe(true);
    expect(budget.waiting).toBe(0);
    expect(budget.used).toBe(10);
  });

  it('refuses at once with a signal already aborted, reserving nothing', async () => {
    const budget = new MemoryBudget(10);
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(budget.acquire(1, controller.signal)).rejects.toThrow('gone');
    expect(budget.used).toBe(0);
  });
});
