import { BlockBufferPool } from './buffer-pool';

/** A Defer the test runs by hand: what setImmediate would run once the microtask queue is empty. */
function manualDefer() {
  const pending: Array<() => void> = [];
  return { defer: (callback: () => void) => pending.push(callback), flush: () => pending.splice(0).forEach((callback) => callback()) };
}

describe('BlockBufferPool', () => {
  it('allocates when empty and reuses a buffer once its quarantine is over', () => {
    const clock = manualDefer();
    const pool = new BlockBufferPool(1024, clock.defer);
    const first = pool.take();
    expect(first.length).toBe(1024);
    pool.give(first);
    clock.flush();
    expect(pool.take()).toBe(first);
    expect(pool.stats).toMatchObject({ allocated: 1, reused: 1 });
  });

  it('never hands out a buffer given back until the deferred flush ran (a reply may still reference it)', () => {
    const clock = manualDefer();
    const pool = new BlockBufferPool(1024, clock.defer);
    const inUse = pool.take();
    pool.give(inUse);
    const next = pool.take();
    expect(next).not.toBe(inUse);
    expect(next.buffer).not.toBe(inUse.buffer);
    clock.flush();
    expect(pool.take()).toBe(inUse);
  });

  it('waits for setImmediate by default: a buffer given back in a microtask is not reused in the same checkpoint', async () => {
    const pool = new BlockBufferPool(1024);
    const given = pool.take();
    await Promise.resolve().then(() => pool.give(given));
    expect(pool.take()).not.toBe(given);
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.take()).toBe(given);
  });

  it('never hands the same buffer to two takers', () => {
    const clock = manualDefer();
    const pool = new BlockBufferPool(64, clock.defer);
    const buffers = Array.from({ length: 8 }, () => pool.take());
    for (const buffer of buffers) pool.give(buffer);
    clock.flush();
    const again = Array.from({ length: 10 }, () => pool.take());
    expect(new Set(again.map((buffer) => buffer.buffer)).size).toBe(10);
  });

  it('keeps no more than trim() allows, dropping the rest for the garbage collector', () => {
    const clock = manualDefer();
    const pool = new BlockBufferPool(100, clock.defer);
    const buffers = Array.from({ length: 5 }, () => pool.take());
    pool.trim(300);
    for (const buffer of buffers) pool.give(buffer);
    clock.flush();
    expect(pool.heldBytes).toBe(300);
    expect(pool.stats.dropped).toBe(2);
    pool.trim(100);
    expect(pool.heldBytes).toBe(100);
    pool.trim(0);
    expect(pool.heldBytes).toBe(0);
  });

  it('hands out ranges of any size up to a block from size classes, and recycles them by class', () => {
    const clock = manualDefer();
    const pool = new BlockBufferPool(1024 * 1024, clock.defer);
    const small = pool.take(1000);
    const mid = pool.take(300 * 1024);
    expect([small.length, small.buffer.byteLength]).toEqual([1000, 64 * 1024]);
    expect([mid.length, mid.buffer.byteLength]).toEqual([300 * 1024, 512 * 1024]);
    expect(pool.memoryOf(mid)).toBe(512 * 1024);
    expect(pool.memoryOf(Buffer.alloc(10))).toBe(10);
    pool.give(mid);
    expect(pool.heldBytes).toBe(512 * 1024);
    clock.flush();
    // Another range of the same class reuses its memory; a range of another class does not.
    expect(pool.take(64 * 1024).buffer).not.toBe(mid.buffer);
    expect(pool.take(400 * 1024).buffer).toBe(mid.buffer);
    expect(pool.stats).toMatchObject({ allocated: 3, reused: 1 });
    expect(() => pool.take(2 * 1024 * 1024)).toThrow(RangeError);
  });

  it('drops quarantined buffers too when trimmed (dropping is safe; only reuse must wait)', () => {
    const clock = manualDefer();
    const pool = new BlockBufferPool(100, clock.defer);
    pool.give(pool.take());
    expect(pool.heldBytes).toBe(100);
    pool.trim(0);
    expect(pool.heldBytes).toBe(0);
    clock.flush();
    expect(pool.heldBytes).toBe(0);
  });

  it('ignores buffers it cannot own: another size, or a view into a larger buffer', () => {
    const clock = manualDefer();
    const pool = new BlockBufferPool(100, clock.defer);
    pool.give(Buffer.alloc(50));
    pool.give(Buffer.alloc(200).subarray(0, 100));
    clock.flush();
    expect(pool.heldBytes).toBe(0);
  });
});
