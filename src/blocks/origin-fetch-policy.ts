// How an origin fill (one store call that reads one block from the object store) is bounded in time. Each role sets
// its own: the mount's read path embeds these fields in its read configuration, the cache server has its own. The
// retries are the store's (S3StoreOptions.maxAttempts), inside this deadline: a fill is never tried again.
import { z } from 'zod';

/** The time bound of an OriginFetcher; every field has the documented default. */
export const originFetchPolicySchema = z.object({
  /**
   * The longest one fill of one block may take, all of the store's tries and their backoff included, before it is
   * aborted and fails: a read gets EIO, a cache server answers 502 (ms). Default 20 s.
   */
  fetchTimeoutMs: z.number().int().min(1).default(20_000),
});

/** A validated origin fetch policy. */
export type OriginFetchPolicy = z.infer<typeof originFetchPolicySchema>;

/** The policy with every default: 20 s per fill. */
export const DEFAULT_ORIGIN_FETCH_POLICY: OriginFetchPolicy = originFetchPolicySchema.parse({});
