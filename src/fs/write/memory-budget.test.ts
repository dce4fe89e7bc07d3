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
