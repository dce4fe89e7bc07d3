// Everything the bench sets up (server, mounts, temp dirs) registers its undo here, so that a failure
// or Ctrl-C leaves nothing mounted or running.

/** A stack of undo steps, run last-in first-out, each at most once. */
export class Cleanup {
  private readonly steps: Array<{ name: string; undo: () => Promise<void> | void }> = [];
  private running: Promise<void> | undefined;

  /** True once runAll has started: nothing new should be set up. */
  get stopping(): boolean {
    return this.running !== undefined;
  }

  /** Registers an undo step; returns a function that runs it now (and removes it from the stack). Throws once stopping. */
  add(name: string, undo: () => Promise<void> | void): () => Promise<void> {
    if (this.stopping) {
      void Promise.resolve().then(undo).catch(() => undefined);
      throw new Error(`interrupted: ${name} was undone at once`);
    }
    const step = { name, undo };
    this.steps.push(step);
    return async () => {
      const index = this.steps.indexOf(step);
      if (index < 0) return;
      this.steps.splice(index, 1);
      await undo();
    };
  }

  /** Runs every remaining step, newest first; a failing step is reported on stderr and the others still run. */
  runAll(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length > 0) {
        const step = this.steps.pop()!;
        try {
          await step.undo();
        } catch (error) {
          process.stderr.write(`bench: cleanup of ${step.name} failed: ${error instanceof Error ? error.message : String(error)}\n`);
        }
      }
    })();
    return this.running;
  }

  /** On SIGINT/SIGTERM: run every step, then exit with 128 + the signal number. */
  onSignals(): void {
    const handler = (signal: NodeJS.Signals, code: number) => {
      process.stderr.write(`bench: ${signal}: cleaning up (unmounting, stopping the server, removing temp dirs)\n`);
      void this.runAll().finally(() => process.exit(code));
    };
    process.once('SIGINT', () => handler('SIGINT', SIGINT_EXIT_CODE));
    process.once('SIGTERM', () => handler('SIGTERM', SIGTERM_EXIT_CODE));
  }
}

/** Exit code after Ctrl-C (128 + SIGINT). */
export const SIGINT_EXIT_CODE = 130;

/** Exit code after SIGTERM (128 + SIGTERM). */
export const SIGTERM_EXIT_CODE = 143;
