// Staggered starts: each reader begins once the one before it is a given number of bytes ahead, as pods
// that start one after the other read the same model behind each other.

/** Interval between two looks at the readers' progress. */
export const STAGGER_POLL_MS = 5;

/** What the starter may ask about the readers. */
export interface StaggerState {
  /** Bytes reader `index` has read so far. */
  progress(index: number): number;
  /** Whether reader `index` has finished (a reader shorter than the stagger must not hold up the rest). */
  finished(index: number): boolean;
  /** Whether the run is over (failed or timed out): start nobody else. */
  stopped(): boolean;
}

/**
 * Starts reader 0 at once, then reader i once reader i - 1 has read `staggerBytes` or finished; with a
 * stagger of 0 every reader starts at once. Resolves once all are started, or the run stopped.
 */
export async function startStaggered(count: number, staggerBytes: number, state: StaggerState, start: (index: number) => void, pollMs = STAGGER_POLL_MS): Promise<void> {
  for (let index = 0; index < count; index += 1) {
    while (index > 0 && staggerBytes > 0 && !state.stopped() && !state.finished(index - 1) && state.progress(index - 1) < staggerBytes) {
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
    if (state.stopped()) return;
    start(index);
  }
}
