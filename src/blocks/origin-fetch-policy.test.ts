import { DEFAULT_ORIGIN_FETCH_POLICY, originFetchPolicySchema } from './origin-fetch-policy';

describe('originFetchPolicySchema', () => {
  it('has the documented default: 20 s per fill, the store\'s tries included; the tries are the store\'s alone', () => {
    expect(DEFAULT_ORIGIN_FETCH_POLICY).toEqual({ fetchTimeoutMs: 20_000 });
  });

  it('refuses a policy that would never wait for an answer', () => {
    expect(originFetchPolicySchema.safeParse({ fetchTimeoutMs: 0 }).success).toBe(false);
  });
});
