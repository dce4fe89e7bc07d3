import { MemoryBudget } from './memory-budget';
import { PartBufferPool } from './part-pool';

describe('PartBufferPool', () => {
  it('recycles a released buffer for the next part, its reservation carried over', async () => {
    const budget = new MemoryBudget(100);
    const pool = new PartBufferPool(10, 4, budget);
    const first = await pool.acquire(10);
    pool.release(first);
    expect(pool.freeBytes).toBe(10);
    expect(budget.used).toBe(10);
    expect(await pool.acquire(10)).toBe(first);
    expect(budget.used).toBe(10);
  });

  it('never hands out a buffer that is still in use', async () => {
    const pool = new PartBufferPool(10, 8, new MemoryBudget(100));
    const inUse = await Promise.all(Array.from({ length: 5 }, () => pool.acquire(10)));
    pool.release(inUse[0] as Buffer);
    const next = await Promise.all(Array.from({ length: 3 }, () => pool.acquire(10)));
    expect(next[0]).toBe(inUse[0]);
    for (const buffer of next.slice(1)) expect(inUse).not.toContain(buffer);
  });

  it('keeps buffers in use plus free ones within the budget, at most maxFree free', async () => {
    const budget = new MemoryBudget(50);
    const pool = new PartBufferPool(10, 2, budget);
    const buffers = await Promise.all(Array.from({ length: 5 }, () => pool.acquire(10)));
    for (const buffer of buffers) pool.release(buffer);
    expect(pool.freeBytes).toBe(20);
    expect(budget.used).toBe(20);
    expect(budget.peak).toBeLessThanOrEqual(50);
  });

  it('gives free buffers\' reservations to a writer who would otherwise wait', async () => {
    const budget = new MemoryBudget(30);
    const pool = new PartBufferPool(10, 3, budget);
    const buffers = await Promise.all(Array.from({ length: 3 }, () => pool.acquire(10)));
    for (const buffer of buffers) pool.release(buffer);
    expect(budget.used).toBe(30);
    // Another size (a larger part, or a staging upload) fits only once the free buffers are dropped.
    await budget.acquire(25);
    expect(pool.freeBytes).toBe(0);
    expect(budget.used).toBe(25);
  });

  it('does not keep a released buffer while writers wait for memory: the bytes go to them', async () => {
    const budget = new MemoryBudget(20);
    const pool = new PartBufferPool(10, 4, budget);
    const [a, b] = await Promise.all([pool.acquire(10), pool.acquire(10)]);
    let granted = false;
    const waiting = budget.acquire(10).then(() => { granted = true; });
    await Promise.resolve();
    expect(granted).toBe(false);
    pool.release(a as Buffer);
    await waiting;
    expect(granted).toBe(true);
    expect(pool.freeBytes).toBe(0);
    pool.release(b as Buffer);
    expect(pool.freeBytes).toBe(10);
  });

  it('allocates buffers of other sizes (later, doubled parts) without recycling them', async () => {
    const budget = new MemoryBudget(100);
    const pool = new PartBufferPool(10, 4, budget);
    const large = await pool.acquire(20);
    expect(large.length).toBe(20);
    pool.release(large);
    expect(pool.freeBytes).toBe(0);
    expect(budget.used).toBe(0);
  });
});
