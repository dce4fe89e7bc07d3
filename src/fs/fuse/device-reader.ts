// Reads the kernel's FUSE requests on a worker thread that blocks in read(2) on /dev/fuse and hands each request
// to the main thread as a transferred ArrayBuffer. Why not libuv's threadpool (fs.read): every request then cost
// the main thread one threadpool submission and one completion, each a thread wake-up; on the 2-core bench
// machine that was 45 µs of main-thread time per request, the largest single cost of reading small files
// (2,000 files × 5 requests). The worker's messages arrive in batches (Node drains a port's queue in one wake-up),
// so the main thread pays only for handling them. The worker is plain JavaScript evaluated from a string, so that
// it runs the same from dist/ and from the TypeScript sources under jest.
import { MessageChannel, Worker } from 'node:worker_threads';

/** What the worker says besides requests: the connection ended (ENODEV or end of file) or reading failed. */
interface EndMessage {
  end: true;
  /** The read(2) failure that stopped it (its errno code and message); absent when the connection ended normally. */
  failure?: { code: string; message: string };
}

/** Requests larger than this are handed over in the read buffer itself (a big WRITE), smaller ones are copied out. */
const COPY_LIMIT = 64 * 1024;

const WORKER_SOURCE = `
const { parentPort, receiveMessageOnPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { fd, bufferSize, copyLimit, returned } = workerData;
// A buffer the main thread gave back (a big request it is done with), else a new one.
const nextBuffer = () => {
  const back = receiveMessageOnPort(returned);
  return back ? Buffer.from(back.message) : Buffer.allocUnsafeSlow(bufferSize);
};
let buffer = nextBuffer();
for (;;) {
  let length;
  try {
    length = fs.readSync(fd, buffer, 0, bufferSize, null);
  } catch (error) {
    // ENOENT: the request about to be read was interrupted; EINTR, EAGAIN: try again.
    if (error.code === 'ENOENT' || error.code === 'EINTR' || error.code === 'EAGAIN') continue;
    // ENODEV: the filesystem was unmounted (or the connection aborted): the normal end.
    parentPort.postMessage(error.code === 'ENODEV' ? { end: true } : { end: true, failure: { code: String(error.code), message: error.message } });
    break;
  }
  if (length === 0) {
    parentPort.postMessage({ end: true });
    break;
  }
  if (length > copyLimit) {
    const whole = buffer.buffer;
    buffer = nextBuffer();
    parentPort.postMessage({ request: whole, length }, [whole]);
  } else {
    const copy = new ArrayBuffer(length);
    buffer.copy(new Uint8Array(copy), 0, 0, length);
    parentPort.postMessage(copy, [copy]);
  }
}
`;

/** Hears every request read (a whole request, owned by the listener) and, once, the end of the connection. */
export interface DeviceRequestListener {
  /**
   * One request. A big one comes with `recycle`: call it once nothing holds the request's bytes any more (its handler
   * has finished), and its memory goes back to the reader for a later request instead of being garbage: 1 MiB per
   * WRITE, whose churn made the garbage collector a sixth of the mount's CPU on sequential writes.
   */
  request(request: Buffer, recycle?: () => void): void;
  /** The connection ended; `error` when reading failed rather than the connection ending normally. */
  end(error?: NodeJS.ErrnoException): void;
}

/**
 * Starts a worker thread reading whole requests of `bufferSize` bytes at most from the /dev/fuse descriptor `fd`
 * (already mounted) until the connection ends. The worker does not keep the process alive.
 */
export function readDeviceOnWorker(fd: number, bufferSize: number, listener: DeviceRequestListener): void {
  // Buffers go back to the worker on a channel of their own, which it polls (it never runs its event loop).
  const { port1: giveBack, port2: returned } = new MessageChannel();
  giveBack.unref();
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { fd, bufferSize, copyLimit: COPY_LIMIT, returned }, transferList: [returned] });
  worker.unref();
  let ended = false;
  const end = (error?: NodeJS.ErrnoException) => {
    if (ended) return;
    ended = true;
    listener.end(error);
  };
  worker.on('message', (message: ArrayBuffer | { request: ArrayBuffer; length: number } | EndMessage) => {
    if (message instanceof ArrayBuffer) return listener.request(Buffer.from(message));
    if ('request' in message) {
      const whole = message.request;
      // Transferred, not copied: any view of it left in this thread reads as empty from then on, never as new bytes.
      return listener.request(Buffer.from(whole, 0, message.length), () => giveBack.postMessage(whole, [whole]));
    }
    if (message.failure) {
      const error: NodeJS.ErrnoException = new Error(`reading /dev/fuse failed: ${message.failure.message}`);
      error.code = message.failure.code;
      return end(error);
    }
    end();
  });
  worker.on('error', (error) => end(error));
  worker.on('exit', () => end());
}
