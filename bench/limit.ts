// Bounded concurrency for the direct side and the setup: `limit` tasks in flight, first failure wins.

/** Calls `task(i)` for i in [0, count) with at most `limit` in flight; rejects with the first failure once all have settled. */
export async function forEachLimited(count: number, limit: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (next < count && !failure) {
      const index = next++;
      try {
        await task(index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
  if (failure) throw failure.error;
}
