// The one exponential backoff of the project: the wait before retry number n. Generic leaf: imports nothing
// from src/.

/** How the wait between tries grows. */
export interface BackoffPolicy {
  /** The wait before the first retry; each further retry doubles it (ms). */
  baseMs: number;
  /** No wait is longer than this (ms); Infinity for none. */
  maxMs: number;
  /**
   * 'full': a uniformly random wait below the exponential one (AWS's "full jitter"), so that clients that failed
   * together do not retry together; 'none': exactly the exponential wait. Default 'none'.
   */
  jitter?: 'full' | 'none';
}

/** The wait (ms, a whole number) before retry number `retry` (1 = the first retry): min(maxMs, baseMs × 2^(retry−1)), jittered as the policy says. */
export function backoffDelay(policy: BackoffPolicy, retry: number, random: () => number = Math.random): number {
  // Past 2^40 the product exceeds any cap; stopping there keeps it a safe integer.
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(0, retry - 1), 40));
  return policy.jitter === 'full' ? Math.floor(random() * ceiling) : ceiling;
}
