// A reader or writer thread on a mount. It uses blocking fs calls on purpose: each thread then has its
// own read()/write() syscall in flight, and neither the harness's event loop nor libuv's small shared
// threadpool limits how many requests reach the filesystem at once.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerInput, WorkerMessage, WorkerResult, WorkerTask } from './tasks';

/** Mismatches described in the result; the rest are only counted. */
const MAX_DESCRIBED_MISMATCHES = 5;

const input = workerData as WorkerInput;
const counter = new Int32Array(input.counter);
const progress = new BigInt64Array(input.progress);
const sourceView = (offset: number, length: number) => Buffer.from(input.source, offset, length);
const takeNext = () => Atomics.add(counter, 0, 1);
const report = (result: WorkerResult) => Atomics.store(progress, input.index, BigInt(result.bytes));

function emptyResult(): WorkerResult {
  return { bytes: 0, items: 0, mismatches: [], mismatchCount: 0 };
}

function mismatch(result: WorkerResult, description: string): void {
  result.mismatchCount += 1;
  if (result.mismatches.length < MAX_DESCRIBED_MISMATCHES) result.mismatches.push(description);
}

/** Reads into `buffer` at `position` until it is full or the file ends; returns the bytes read. */
function readFully(fd: number, buffer: Buffer, position: number | null): number {
  let filled = 0;
  while (filled < buffer.length) {
    const read = fs.readSync(fd, buffer, filled, buffer.length - filled, position === null ? null : position + filled);
    if (read === 0) break;
    filled += read;
  }
  return filled;
}

function readSequential(task: Extract<WorkerTask, { kind: 'read-sequential' }>): WorkerResult {
  const result = emptyResult();
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(input.blockBytes);
  const fd = fs.openSync(task.path, task.direct ? fs.constants.O_RDONLY | fs.constants.O_DIRECT : fs.constants.O_RDONLY);
  try {
    for (;;) {
      const read = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (read === 0) break;
      hash.update(buffer.subarray(0, read));
      result.bytes += read;
      result.items += 1;
      report(result);
    }
  } finally {
    fs.closeSync(fd);
  }
  result.sha256 = hash.digest('hex');
  return result;
}

function writeSequential(task: Extract<WorkerTask, { kind: 'write-sequential' }>): WorkerResult {
  const result = emptyResult();
  const fd = fs.openSync(task.path, 'w');
  try {
    for (let offset = 0; offset < task.length; ) {
      const block = sourceView(offset, Math.min(input.blockBytes, task.length - offset));
      for (let written = 0; written < block.length; ) written += fs.writeSync(fd, block, written, block.length - written);
      offset += block.length;
      result.bytes += block.length;
      result.items += 1;
    }
  } finally {
    // The measured time runs until close returns: that is when the file is meant to be durable.
    fs.closeSync(fd);
  }
  return result;
}

function readFiles(task: Extract<WorkerTask, { kind: 'read-files' }>): WorkerResult {
  const result = emptyResult();
  // One byte more than expected, so that a file that is too long shows.
  const buffer = Buffer.allocUnsafe(task.fileSize + 1);
  for (let index = takeNext(); index < task.paths.length; index = takeNext()) {
    const file = task.paths[index]!;
    const fd = fs.openSync(file, 'r');
    let read: number;
    try {
      read = readFully(fd, buffer, null);
    } finally {
      fs.closeSync(fd);
    }
    result.bytes += read;
    result.items += 1;
    if (read !== task.fileSize || !buffer.subarray(0, read).equals(sourceView(task.offsets[index]!, task.fileSize))) {
      mismatch(result, `${file}: read ${read} bytes that differ from the ${task.fileSize} source bytes`);
    }
  }
  return result;
}

function readRanges(task: Extract<WorkerTask, { kind: 'read-ranges' }>): WorkerResult {
  const result = emptyResult();
  const buffer = Buffer.allocUnsafe(task.length);
  const fd = fs.openSync(task.path, 'r');
  try {
    for (let index = takeNext(); index < task.offsets.length; index = takeNext()) {
      const offset = task.offsets[index]!;
      const read = readFully(fd, buffer, offset);
      result.bytes += read;
      result.items += 1;
      if (read !== task.length || !buffer.equals(sourceView(offset, task.length))) {
        mismatch(result, `read of ${task.length} bytes at ${offset}: got ${read} bytes that differ from the source`);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return result;
}

function perform(task: WorkerTask): WorkerResult {
  switch (task.kind) {
    case 'read-sequential': return readSequential(task);
    case 'write-sequential': return writeSequential(task);
    case 'read-files': return readFiles(task);
    case 'read-ranges': return readRanges(task);
  }
}

const post = (message: WorkerMessage) => parentPort!.postMessage(message);

parentPort!.once('message', () => {
  try {
    post({ type: 'done', result: perform(input.task) });
  } catch (error) {
    post({ type: 'failed', error: error instanceof Error ? error.message : String(error) });
  }
});
post({ type: 'ready' });
