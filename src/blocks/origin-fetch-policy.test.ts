import { DEFAULT_ORIGIN_FETCH_POLICY, originFetchPolicySchema } from './origin-fetch-policy';

describe('originFetchPolicySchema', () => {
  it('has the documented defaults: 20 s per GET, 3 tries, 200 ms to 2 s of backoff', () => {
    expect(DEFAULT_ORIGIN_FETCH_POLICY).toEqual({ fetchTimeoutMs: 20_000, fetchAttempts: 3, retryBaseDelayMs: 200, retryMaxDelayMs: 2000 });
  });

  it('refuses a policy that would never try, or never wait for an answer', () => {
    expect(originFetchPolicySchema.safeParse({ fetchAttempts: 0 }).success).toBe(false);
    expect(originFetchPolicySchema.safeParse({ fetchTimeoutMs: 0 }).success).toBe(false);
    expect(originFetchPolicySchema.safeParse({ fetchAttempts: 21 }).success).toBe(false);
  });
});
