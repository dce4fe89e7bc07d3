// Waiting on a promise that cannot itself be cancelled, but only for as long as a signal allows. Generic leaf:
// imports nothing from src/.

/**
 * Resolves or rejects as `promise` does, or rejects with `signal.reason` as soon as the signal aborts (at once when it
 * already has); `promise` itself goes on, and no listener is left behind once either settles.
 */
export function untilAborted<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
