// One part of a streaming upload while it fills: a fixed buffer whose memory is reserved from the mount's budget.

/** The bytes of one part, filled by sequential writes until it reaches its planned size. */
export class PartBuffer {
  private filled = 0;

  /** Part `partNumber` over `data` (from PartBufferPool.acquire, its whole length is the planned size); only the filled prefix is ever read. */
  constructor(
    readonly partNumber: number,
    readonly data: Buffer,
  ) {}

  /** The part's planned size. */
  get capacity(): number {
    return this.data.length;
  }

  /** Copies as much of `source` as fits and returns the bytes taken; the copy frees the caller's buffer. */
  append(source: Buffer): number {
    const taken = source.copy(this.data, this.filled, 0, Math.min(source.length, this.capacity - this.filled));
    this.filled += taken;
    return taken;
  }

  /** Bytes filled so far. */
  get length(): number {
    return this.filled;
  }

  /** True once the part has its planned size. */
  get full(): boolean {
    return this.filled === this.capacity;
  }

  /** The filled bytes (a view, not a copy). */
  bytes(): Buffer {
    return this.data.subarray(0, this.filled);
  }
}
