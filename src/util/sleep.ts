// The one abortable sleep of the project: retry waits, backoff between lists, polls. Generic leaf: imports
// nothing from src/.

/** Waits `ms`, or rejects as soon as `signal` aborts, with the signal's reason (the caller sees why it stopped). */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** Options of sleep(). */
export interface SleepOptions {
  /** The timer does not keep the process alive (a background loop's wait). Default false. */
  unref?: boolean;
}

/**
 * Waits `ms`; rejects at once with `signal.reason` when the signal is (or becomes) aborted, and then leaves no
 * timer or listener behind. Unlike node:timers/promises, the rejection is the reason itself, not an AbortError.
 */
export function sleep(ms: number, signal?: AbortSignal, options: SleepOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (options.unref) timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Like sleep(), but an abort ends the wait early without an error (for loops that check their own state next). */
export function sleepUnlessAborted(ms: number, signal?: AbortSignal, options: SleepOptions = {}): Promise<void> {
  return sleep(ms, signal, options).catch(() => undefined);
}
