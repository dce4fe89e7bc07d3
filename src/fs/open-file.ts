// The contract between the filesystem (src/fs/filesystem.ts) and what an open regular file is:
// a read handle (src/fs/read/) or a write handle (src/fs/write/).

/**
 * An open regular file: what FUSE READ, WRITE, FLUSH, FSYNC and RELEASE act on. The filesystem
 * picks the implementation at open/create time from the open flags.
 */
export interface OpenFile {
  /** The file size as this handle sees it (a write handle's size grows with its writes). */
  readonly size: number;
  /** Reads up to `size` bytes at `offset`; fewer (or none) at the end of the file. */
  read(offset: number, size: number): Promise<Buffer>;
  /**
   * Writes `data` at `offset` and returns the bytes taken; a read-only handle throws FuseError(EBADF). When `signal`
   * aborts a wait (the caller was interrupted), returns the bytes taken before it, or rejects with its reason having
   * taken none.
   */
  write(offset: number, data: Buffer, signal?: AbortSignal): Promise<number>;
  /**
   * close(2) of one descriptor (FUSE FLUSH, sent for every descriptor, dup2'ed ones included). For a
   * handle with writes since its last persist: returns only when the object store has acknowledged the
   * whole object, so a close that succeeded means the data is durable; with none, it changes nothing.
   * `onProgress` is called whenever the store acknowledges a part or the object meanwhile.
   */
  flush(onProgress?: () => void): Promise<void>;
  /** fsync(2): the same durability as flush, without closing (`onProgress` as for flush). */
  fsync(onProgress?: () => void): Promise<void>;
  /**
   * The writer was told a call failed that still runs (a deadline passed): nothing it wrote that the store does not
   * have yet may land there any more. Optional: a read handle has nothing to abandon.
   */
  abandon?(reason: Error): void;
  /**
   * The last descriptor is gone (FUSE RELEASE, which close(2) does not wait for): publish what the flushes
   * left unpublished (an empty new or truncated file), unless a flush failed; then free buffers.
   */
  release(): Promise<void>;
}
