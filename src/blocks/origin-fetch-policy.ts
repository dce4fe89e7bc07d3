// How an origin fill (one ranged GET of one block from the object store) is bounded and retried. Each role sets
// its own: the mount's read path embeds these fields in its read configuration, the cache server has its own.
import { z } from 'zod';

/** Retry and timeout settings of an OriginBlockSource; every field has the documented default. */
export const originFetchPolicySchema = z.object({
  /** The longest one GET of one block may take, body included, before it is aborted and retried (ms). Default 20 s. */
  fetchTimeoutMs: z.number().int().min(1).default(20_000),
  /** Tries per block fetch, the first included, on Unavailable and timeouts; then the fetch fails (a read gets EIO). Default 3. */
  fetchAttempts: z.number().int().min(1).max(20).default(3),
  /** Backoff before the first retry (ms); doubles each retry, with full jitter. Default 200 ms. */
  retryBaseDelayMs: z.number().int().min(0).default(200),
  /** Ceiling of the backoff between retries (ms). Default 2 s. */
  retryMaxDelayMs: z.number().int().min(0).default(2000),
});

/** A validated origin fetch policy. */
export type OriginFetchPolicy = z.infer<typeof originFetchPolicySchema>;

/** The policy with every default: 20 s per try, 3 tries, 200 ms to 2 s of jittered backoff. */
export const DEFAULT_ORIGIN_FETCH_POLICY: OriginFetchPolicy = originFetchPolicySchema.parse({});
