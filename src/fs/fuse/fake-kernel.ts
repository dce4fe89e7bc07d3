// A FuseSystem that plays the kernel in memory, for unit tests of FuseSession and the filesystem:
// tests push requests, the session reads them from a fake device, and replies are collected.
import { constants as osConstants } from 'node:os';
import type { FuseDevice, FuseSystem, MountRequest } from './device';
import { decodeOutHeader, encodeInHeader, encodeInterruptIn, INTERRUPT_UNIQUE_BIT, Opcode, Size, type OutHeader } from './protocol';

/** The connection id the fake kernel gives every mount. */
export const FAKE_CONNECTION_ID = 42;

/** A reply the session wrote, split into header and body. */
export interface CapturedReply {
  header: OutHeader;
  body: Buffer;
}

function errnoError(code: 'ENODEV' | 'ENOENT'): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(code);
  error.code = code;
  error.errno = osConstants.errno[code];
  return error;
}

/** An in-memory kernel: a FuseSystem whose device is fed by `send()`. */
export class FakeKernel implements FuseSystem {
  /** Every mount request the session made. */
  readonly mounts: MountRequest[] = [];
  /** Every unmount call: [mountpoint, lazy]. */
  readonly unmounts: Array<[string, boolean]> = [];
  /** When set, a non-lazy unmount fails with this (e.g. "target is busy"). */
  failPlainUnmount: string | undefined;
  private readonly queue: Buffer[] = [];
  private readonly waitingReads: Array<{ buffer: Buffer; resolve: (n: number) => void; reject: (e: Error) => void }> = [];
  private readonly waitingReplies = new Map<bigint, (reply: CapturedReply) => void>();
  private readonly replies = new Map<bigint, CapturedReply>();
  private nextUnique = 100n;
  private gone = false;
  closed = false;

  /** All replies by request id. */
  get captured(): ReadonlyMap<bigint, CapturedReply> {
    return this.replies;
  }

  async openDevice(): Promise<FuseDevice> {
    const device: FuseDevice = {
      fd: 99,
      read: (buffer) =>
        new Promise((resolve, reject) => {
          if (this.gone) return reject(errnoError('ENODEV'));
          this.waitingReads.push({ buffer, resolve, reject });
          this.pump();
        }),
      write: (chunks) => {
        const message = Buffer.concat(chunks);
        const header = decodeOutHeader(message);
        if (header.length !== message.length) throw new Error(`reply length ${header.length} != written ${message.length}`);
        const reply = { header, body: message.subarray(Size.OUT_HEADER) };
        this.replies.set(header.unique, reply);
        this.waitingReplies.get(header.unique)?.(reply);
      },
      close: () => {
        this.closed = true;
      },
    };
    return device;
  }

  /** Every abort call (connection ids). */
  readonly aborts: number[] = [];
  /** When true, unmount detaches but the connection stays (files still open), as after a lazy umount. */
  keepConnectionOnUnmount = false;

  async mount(request: MountRequest): Promise<number | undefined> {
    this.mounts.push(request);
    // Like the kernel, the first request on a new mount is FUSE_INIT (7.45, every flag offered).
    const init = Buffer.alloc(64);
    init.writeUInt32LE(7, 0);
    init.writeUInt32LE(45, 4);
    init.writeUInt32LE(128 * 1024, 8);
    init.writeUInt32LE(0xffffffff, 12);
    this.enqueue(Opcode.INIT, 0, init);
    return FAKE_CONNECTION_ID;
  }

  async abort(connection: number): Promise<void> {
    this.aborts.push(connection);
    this.disconnect();
  }

  async unmount(mountpoint: string, lazy: boolean): Promise<void> {
    this.unmounts.push([mountpoint, lazy]);
    if (!lazy && this.failPlainUnmount) throw new Error(this.failPlainUnmount);
    if (!this.keepConnectionOnUnmount) this.disconnect();
  }

  /** Ends the connection as an external umount would: every read fails with ENODEV. */
  disconnect(): void {
    this.gone = true;
    for (const read of this.waitingReads.splice(0)) read.reject(errnoError('ENODEV'));
  }

  /** Queues a request and returns its unique id (even, as the kernel's: it steps them by 2). */
  enqueue(opcode: number, nodeId: number, body: Buffer = Buffer.alloc(0), credentials = { uid: 0, gid: 0, pid: 1 }): bigint {
    const unique = this.nextUnique;
    this.nextUnique += 2n;
    return this.enqueueAs(unique, opcode, nodeId, body, credentials);
  }

  /** Queues an INTERRUPT of request `unique`, as the kernel does when that request's caller gets a signal; returns the INTERRUPT's own id. */
  interrupt(unique: bigint): bigint {
    return this.enqueueAs(unique | INTERRUPT_UNIQUE_BIT, Opcode.INTERRUPT, 0, encodeInterruptIn(unique));
  }

  private enqueueAs(unique: bigint, opcode: number, nodeId: number, body: Buffer, credentials = { uid: 0, gid: 0, pid: 1 }): bigint {
    const header = encodeInHeader({ length: Size.IN_HEADER + body.length, opcode, unique, nodeId, ...credentials });
    this.queue.push(Buffer.concat([header, body]));
    this.pump();
    return unique;
  }

  /** Sends a request and waits for its reply. */
  request(opcode: number, nodeId: number, body?: Buffer, credentials?: { uid: number; gid: number; pid: number }): Promise<CapturedReply> {
    const unique = this.enqueue(opcode, nodeId, body, credentials);
    return this.reply(unique);
  }

  /** Waits for the reply to `unique`. */
  reply(unique: bigint): Promise<CapturedReply> {
    const done = this.replies.get(unique);
    if (done) return Promise.resolve(done);
    return new Promise((resolve) => this.waitingReplies.set(unique, resolve));
  }

  private pump(): void {
    while (this.queue.length > 0 && this.waitingReads.length > 0) {
      const request = this.queue.shift() as Buffer;
      const read = this.waitingReads.shift() as (typeof this.waitingReads)[number];
      request.copy(read.buffer);
      read.resolve(request.length);
    }
  }
}
