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

/** The smallest buffer the pool recycles: smaller ranges (metadata-sized reads) are not worth keeping apart. */
const MIN_POOLED_BYTES = 64 * 1024;

/**
 * Recycles buffers by size class: powers of two from MIN_POOLED_BYTES up to `bufferBytes` (the block size, itself
 * the top class). take(n) hands out a view of exactly n bytes over a free buffer of n's class, or a new one; give()
 * takes back a view from take() whose contents nobody will read any more (see the comment at the top of this file
 * for when that is). Ranges of any size up to a block thus reuse memory: random reads fetch exact ranges, and one
 * new ArrayBuffer per fetch made garbage collection a third of the mount's CPU on them. The free lists only grow as
 * far as trim() allows, so the owner keeps its memory bound.
 */
export class BlockBufferPool {
  /** Counters since creation. */
  readonly stats: BufferPoolStats = { reused: 0, allocated: 0, dropped: 0 };
  /** Free whole buffers, by class size. */
  private readonly free = new Map<number, Buffer[]>();
  private quarantine: Buffer[] = [];
  /** Bytes of the free and quarantined buffers. */
  private held = 0;
  /** The memory of every buffer this pool allocated: give() takes back only those. */
  private readonly own = new WeakSet<ArrayBufferLike>();
  private flushScheduled = false;
  private limitBytes = Number.POSITIVE_INFINITY;

  constructor(
    readonly bufferBytes: number,
    private readonly defer: Defer = (callback) => setImmediate(callback),
  ) {}

  /** Bytes held by the pool: free buffers plus those waiting out their quarantine. */
  get heldBytes(): number {
    return this.held;
  }

  /** The class of an n-byte range: the smallest power of two from MIN_POOLED_BYTES that holds it, at most bufferBytes. */
  classOf(bytes: number): number {
    let size = MIN_POOLED_BYTES;
    while (size < bytes && size < this.bufferBytes) size *= 2;
    return Math.min(size, this.bufferBytes);
  }

  /** The memory a buffer holds: its whole size class when it is a view from take(), else its own length. */
  memoryOf(buffer: Buffer): number {
    return buffer.byteOffset === 0 && this.own.has(buffer.buffer) ? buffer.buffer.byteLength : buffer.length;
  }

  /** A buffer of `bytes` (default bufferBytes, at most that) whose previous contents nobody reads any more; its bytes are garbage. */
  take(bytes = this.bufferBytes): Buffer {
    if (bytes > this.bufferBytes) throw new RangeError(`a pool of ${this.bufferBytes}-byte buffers cannot hand out ${bytes} bytes`);
    const size = this.classOf(bytes);
    const buffer = this.free.get(size)?.pop();
    if (buffer) {
      this.held -= size;
      this.stats.reused++;
      return bytes === size ? buffer : buffer.subarray(0, bytes);
    }
    this.stats.allocated++;
    // allocUnsafeSlow: its own ArrayBuffer, never a slice of Node's shared pool that others write to.
    const fresh = Buffer.allocUnsafeSlow(size);
    this.own.add(fresh.buffer);
    return bytes === size ? fresh : fresh.subarray(0, bytes);
  }

  /** Takes back a buffer from take() that no reader will look at after the current microtask checkpoint. */
  give(buffer: Buffer): void {
    if (buffer.byteOffset !== 0 || !this.own.has(buffer.buffer)) return;
    const size = buffer.buffer.byteLength;
    if (this.held + size > this.limitBytes) {
      this.stats.dropped++;
      return;
    }
    this.quarantine.push(buffer.length === size ? buffer : Buffer.from(buffer.buffer, 0, size));
    this.held += size;
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.defer(() => {
      this.flushScheduled = false;
      const released = this.quarantine;
      this.quarantine = [];
      for (const whole of released) {
        const list = this.free.get(whole.length) ?? [];
        list.push(whole);
        this.free.set(whole.length, list);
      }
      this.trim(this.limitBytes);
    });
  }

  /**
   * Caps the bytes the pool may hold from now on, dropping buffers beyond it: free ones first, largest first, then
   * quarantined ones (dropping one for the garbage collector is always safe; only handing it out again must wait).
   */
  trim(limitBytes: number): void {
    this.limitBytes = Math.max(0, limitBytes);
    if (this.held <= this.limitBytes) return;
    for (const size of [...this.free.keys()].sort((a, b) => b - a)) {
      const list = this.free.get(size) as Buffer[];
      while (list.length > 0 && this.held > this.limitBytes) this.drop((list.pop() as Buffer).length);
      if (this.held <= this.limitBytes) return;
    }
    while (this.quarantine.length > 0 && this.held > this.limitBytes) this.drop((this.quarantine.pop() as Buffer).length);
  }

  private drop(size: number): void {
    this.held -= size;
    this.stats.dropped++;
  }
}
