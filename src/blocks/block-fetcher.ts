// Where block bytes come from: one method, so the cluster cache's peer source can stand in front of the object
// store (and fall back to it) without the reader knowing which one answered. Imported by the filesystem's read
// path and by the cache alike; neither knows the other.

/** One byte range [start, end) of one object version, all inside one block. */
export interface BlockRequest {
  key: string;
  /** The version to read; '' when the store gave none (then the bytes are not checked against a version). */
  etag: string;
  start: number;
  end: number;
  /** The size of the whole object version, when the reader knows it (the cluster cache names blocks with it). */
  objectSize?: number;
  /** Aborts the fetch (the mount is going away). */
  signal?: AbortSignal;
  /**
   * A buffer of exactly end - start bytes the source may fill and resolve with instead of allocating one
   * (a recycled block buffer). It belongs to the source until the fetch settles: after that, even a failed
   * or aborted fetch must not write into it.
   */
  into?: Buffer;
}

/** Fetches one byte range of one object version (groupcache's getter): the object store, or a peer in front of it. */
export interface BlockFetcher {
  /** Resolves with exactly end - start bytes, or rejects (an ObjectStoreError, or the signal's reason). */
  fetch(request: BlockRequest): Promise<Buffer>;
}
