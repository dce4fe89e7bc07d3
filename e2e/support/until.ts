// Waiting for a condition a test cannot be told about by an event (a file another process opened, a
// mount the kernel dropped): poll it, and fail naming what never happened rather than sleep and hope.

/** Resolves once `condition` holds (polled every `intervalMs`); rejects naming `what` after `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
