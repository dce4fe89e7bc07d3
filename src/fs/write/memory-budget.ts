// The per-mount cap on bytes held in part buffers, shared by every write handle of the mount.

/**
 * A counting semaphore over bytes: acquire() waits while the cap would be exceeded, release() gives bytes back.
 * Waiters are served in arrival order, so a large request is not starved by a stream of small ones.
 */
export class MemoryBudget {
  private usedBytes = 0;
  private peakBytes = 0;
  private readonly waiters: Array<{ bytes: number; grant: () => void }> = [];
  /** Releases reservations nobody needs (free recycled buffers) when an acquire would otherwise wait. */
  reclaim: (() => void) | undefined;

  constructor(readonly capacity: number) {}

  /** Bytes currently held. */
  get used(): number {
    return this.usedBytes;
  }

  /** The most bytes ever held at once (for tests and metrics). */
  get peak(): number {
    return this.peakBytes;
  }

  /** Writers waiting for bytes right now. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Resolves once `bytes` (at most the capacity) are reserved for the caller, who must release() them. When `signal`
   * aborts first, the caller leaves the queue holding nothing and the call rejects with the signal's reason.
   */
  async acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    if (bytes > this.capacity) throw new RangeError(`cannot reserve ${bytes} bytes from a memory budget of ${this.capacity}`);
    signal?.throwIfAborted();
    if (this.waiters.length === 0 && this.usedBytes + bytes > this.capacity) this.reclaim?.();
    if (this.waiters.length === 0 && this.usedBytes + bytes <= this.capacity) {
      this.take(bytes);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        bytes,
        grant: () => {
          signal?.removeEventListener('abort', leave);
          resolve();
        },
      };
      const leave = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(signal?.reason);
        // The head of the queue may have been all that kept smaller waiters behind it waiting.
        this.release(0);
      };
      signal?.addEventListener('abort', leave, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Gives back bytes reserved by acquire() and wakes the waiters that now fit. */
  release(bytes: number): void {
    this.usedBytes -= bytes;
    if (this.usedBytes < 0) throw new Error(`memory budget released more than it reserved (${this.usedBytes})`);
    while (this.waiters.length > 0) {
      const next = this.waiters[0]!;
      if (this.usedBytes + next.bytes > this.capacity) break;
      this.waiters.shift();
      this.take(next.bytes);
      next.grant();
    }
  }

  private take(bytes: number): void {
    this.usedBytes += bytes;
    this.peakBytes = Math.max(this.peakBytes, this.usedBytes);
  }
}
