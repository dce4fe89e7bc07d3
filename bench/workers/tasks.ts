// The messages between the harness and its reader/writer threads on a mount.

/**
 * One thread's job; threads of the same run share a counter and take the next file or offset from it.
 * A `direct` sequential read opens with O_DIRECT, so every read reaches the filesystem and none is served
 * from the kernel's page cache (as when a pod's page cache is reclaimed under its memory limit).
 */
export type WorkerTask =
  | { kind: 'read-sequential'; path: string; direct?: boolean }
  | { kind: 'write-sequential'; path: string; length: number }
  | { kind: 'read-files'; paths: string[]; offsets: number[]; fileSize: number }
  | { kind: 'read-ranges'; path: string; offsets: number[]; length: number };

/** What a thread is started with (workerData). */
export interface WorkerInput {
  task: WorkerTask;
  /** The source bytes (the big file), to compare reads with and to write from. */
  source: SharedArrayBuffer;
  /** One Int32: the index of the next file or offset to take. */
  counter: SharedArrayBuffer;
  /** Size of each read() and write(). */
  blockBytes: number;
  /** One BigInt64 per thread of the run: the bytes each sequential reader has read so far (for staggered starts). */
  progress: SharedArrayBuffer;
  /** This thread's slot in `progress`. */
  index: number;
}

/** What a thread did. */
export interface WorkerResult {
  bytes: number;
  /** Files or reads completed. */
  items: number;
  /** Reads whose bytes differ from the source (the first few, described). */
  mismatches: string[];
  /** Number of mismatching reads, all of them. */
  mismatchCount: number;
  /** sha256 (hex) of what a sequential reader read. */
  sha256?: string;
}

/** Thread → harness: started and waiting for `go`; finished; or failed with the error's message. */
export type WorkerMessage = { type: 'ready' } | { type: 'done'; result: WorkerResult } | { type: 'failed'; error: string };

/** Harness → thread: start now (sent to every thread at once, after all are ready). */
export interface GoMessage {
  type: 'go';
}
