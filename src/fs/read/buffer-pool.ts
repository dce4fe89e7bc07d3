// A free list of block-sized buffers: fetches fill recycled buffers instead of allocating 4 MiB each,
// which at a few hundred MiB/s made the garbage collector a sixth of the mount's CPU.
//
// Why a returned buffer is not reused at once. A cached block is handed to readers as a Buffer (the
// read handle replies with a view into it, zero copy). A reader's use of that view ends when the FUSE
// session has written the reply: device.write is a synchronous writev, the kernel copies the bytes
// before it returns, and the path from BlockCache.read() resolving to that writev is promise
// continuations only (ReadHandle -> OpenFiles.call -> FuseSession), so it finishes within the
// microtask checkpoint in which the block's promise resolved. A read that spans two blocks copies each
// piece out in the continuation of its own promise, for the same reason. A buffer given back (its block
// was evicted) therefore goes to a quarantine first and joins the free list from a setImmediate
// callback: Node runs no immediate before the current microtask queue is empty, so every reply that
// could still reference the evicted block has been written by then. Without the quarantine, a fetch
// whose response headers had already arrived could take the buffer in the same checkpoint and copy
// buffered body bytes over a block a reply is about to send.

/** Counters of a BlockBufferPool, plain numbers that become metrics. */
export interface BufferPoolStats {
  /** Buffers handed out from the free list. */
  reused: number;
  /** Buffers allocated because the free list was empty. */
  allocated: number;
  /** Buffers given back but dropped for the garbage collector (the memory bound had no room for them). */
  dropped: number;
}

/** Runs `callback` after the current microtask checkpoint; setImmediate unless a test passes its own. */
export type Defer = (callback: () => void) => void;

/**
 * Recycles buffers of exactly `bufferBytes` bytes. take() hands out a free buffer or allocates one;
 * give() returns one whose contents nobody will read any more (see the comment at the top of this file
 * for when that is). The free list only grows as far as trim() allows, so its owner keeps its memory bound.
 */
export class BlockBufferPool {
  /** Counters since creation. */
  readonly stats: BufferPoolStats = { reused: 0, allocated: 0, dropped: 0 };
  private readonly free: Buffer[] = [];
  private quarantine: Buffer[] = [];
  private flushScheduled = false;
  private limitBytes = Number.POSITIVE_INFINITY;

  constructor(
    readonly bufferBytes: number,
    private readonly defer: Defer = (callback) => setImmediate(callback),
  ) {}

  /** Bytes held by the pool: free buffers plus those waiting out their quarantine. */
  get heldBytes(): number {
    return (this.free.length + this.quarantine.length) * this.bufferBytes;
  }

  /** A buffer of bufferBytes whose previous contents nobody reads any more; its bytes are garbage. */
  take(): Buffer {
    const buffer = this.free.pop();
    if (buffer) {
      this.stats.reused++;
      return buffer;
    }
    this.stats.allocated++;
    // allocUnsafeSlow: its own ArrayBuffer, never a slice of Node's shared pool that others write to.
    return Buffer.allocUnsafeSlow(this.bufferBytes);
  }

  /** Takes back a buffer from take() that no reader will look at after the current microtask checkpoint. */
  give(buffer: Buffer): void {
    if (!this.owns(buffer)) return;
    if (this.heldBytes + this.bufferBytes > this.limitBytes) {
      this.stats.dropped++;
      return;
    }
    this.quarantine.push(buffer);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.defer(() => {
      this.flushScheduled = false;
      const released = this.quarantine;
      this.quarantine = [];
      this.free.push(...released);
      this.trim(this.limitBytes);
    });
  }

  /** Caps the bytes the pool may hold from now on, dropping free buffers beyond it (those in quarantine go later). */
  trim(limitBytes: number): void {
    this.limitBytes = Math.max(0, limitBytes);
    while (this.free.length > 0 && this.heldBytes > this.limitBytes) {
      this.free.pop();
      this.stats.dropped++;
    }
  }

  /** Whether `buffer` is a whole buffer of this pool's size (not a view into a larger or shared one). */
  private owns(buffer: Buffer): boolean {
    return buffer.length === this.bufferBytes && buffer.byteOffset === 0 && buffer.buffer.byteLength === this.bufferBytes;
  }
}
