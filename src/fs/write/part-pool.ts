// Recycled part buffers: a streamed file's parts reuse the buffers of parts already uploaded instead of
// allocating (and page-faulting in) 8 MiB of fresh memory each.
import type { MemoryBudget } from './memory-budget';

/**
 * Part buffers of the mount, reserved from its MemoryBudget. A free buffer keeps its reservation, so part
 * buffers in use plus free ones never exceed memoryBudgetBytes; when a writer would have to wait for memory,
 * the budget reclaims the free buffers first (their reservations go to the waiter), so recycling never makes
 * anyone wait. A buffer is given back only once its part's upload settled: the SDK has stopped reading it.
 */
export class PartBufferPool {
  private readonly free: Buffer[] = [];

  /** `bufferBytes`: the size recycled (the first part size); at most `maxFree` buffers are kept. */
  constructor(
    readonly bufferBytes: number,
    readonly maxFree: number,
    private readonly budget: MemoryBudget,
  ) {
    budget.reclaim = () => this.drain();
  }

  /** Bytes of free buffers (still reserved from the budget). */
  get freeBytes(): number {
    return this.free.length * this.bufferBytes;
  }

  /** A buffer of `capacity` bytes whose reservation the caller now holds; waits for memory like MemoryBudget.acquire (`signal` ends the wait). */
  async acquire(capacity: number, signal?: AbortSignal): Promise<Buffer> {
    if (capacity === this.bufferBytes) {
      const recycled = this.free.pop();
      if (recycled) return recycled; // its reservation passes to the caller
    }
    await this.budget.acquire(capacity, signal);
    // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared pool; only the filled prefix is read.
    return Buffer.allocUnsafeSlow(capacity);
  }

  /** Gives back a buffer from acquire() nobody reads any more: kept for the next part, or its reservation released. */
  release(buffer: Buffer): void {
    if (buffer.length === this.bufferBytes && this.free.length < this.maxFree && this.budget.waiting === 0) {
      this.free.push(buffer);
      return;
    }
    this.budget.release(buffer.length);
  }

  /** Drops every free buffer and releases its reservation. */
  drain(): void {
    const bytes = this.freeBytes;
    this.free.length = 0;
    if (bytes > 0) this.budget.release(bytes);
  }
}
