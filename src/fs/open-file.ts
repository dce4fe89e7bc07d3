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
  /** Writes `data` at `offset` and returns the bytes taken; a read-only handle throws FuseError(EBADF). */
  write(offset: number, data: Buffer): Promise<number>;
  /**
   * close(2) of one descriptor (FUSE FLUSH, sent for every descriptor, dup2'ed ones included). For a
   * handle with writes since its last persist: returns only when the object store has acknowledged the
   * whole object, so a close that succeeded means the data is durable; with none, it changes nothing.
   */
  flush(): Promise<void>;
  /** fsync(2): the same durability as flush, without closing. */
  fsync(): Promise<void>;
  /**
   * The last descriptor is gone (FUSE RELEASE, which close(2) does not wait for): publish what the flushes
   * left unpublished (an empty new or truncated file), unless a flush failed; then free buffers.
   */
  release(): Promise<void>;
}
