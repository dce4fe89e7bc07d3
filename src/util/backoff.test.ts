import { backoffDelay } from './backoff';

describe('backoffDelay', () => {
  it('doubles from the base up to the cap, without jitter by default', () => {
    const policy = { baseMs: 1000, maxMs: 3000 };
    expect([1, 2, 3, 4, 5].map((retry) => backoffDelay(policy, retry))).toEqual([1000, 2000, 3000, 3000, 3000]);
  });

  it('has no cap with maxMs Infinity', () => {
    expect([1, 2, 3, 4].map((retry) => backoffDelay({ baseMs: 200, maxMs: Infinity }, retry))).toEqual([200, 400, 800, 1600]);
  });

  it('with full jitter waits a whole number of ms below the exponential wait', () => {
    const policy = { baseMs: 200, maxMs: 2000, jitter: 'full' as const };
    expect(backoffDelay(policy, 3, () => 0.5)).toBe(400);
    expect(backoffDelay(policy, 3, () => 0)).toBe(0);
    expect(backoffDelay(policy, 3, () => 0.9999)).toBe(799);
    expect(backoffDelay(policy, 10, () => 0.5)).toBe(1000);
  });

  it('stays finite for very late retries', () => {
    expect(backoffDelay({ baseMs: 1, maxMs: Infinity }, 5000)).toBe(2 ** 40);
  });
});
