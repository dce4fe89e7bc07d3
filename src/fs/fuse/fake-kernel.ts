// A FuseSystem that plays the kernel in memory, for unit tests of FuseSession and the filesystem:
// tests push requests, the session reads them from a fake device, and replies are collected.
import { constants as osConstants } from 'node:os';
import type { FuseDevice, FuseSystem, MountRequest } from './device';
import { decodeOutHeader, encodeInHeader, encodeInterruptIn, InitFlag2, INTERRUPT_UNIQUE_BIT, NotifyCode, Opcode, Size, UNIQUE_RESEND_BIT, type OutHeader } from './protocol';

/** A fake device: a FuseDevice the fake kernel tells apart from the others. */
type FakeDevice = FuseDevice;

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
  private readonly waitingReads: Array<{ buffer: Buffer; resolve: (n: number) => void; reject: (e: Error) => void; device: FakeDevice }> = [];
  /** Requests read by a device and not answered yet (the kernel's processing queue), by id. */
  private readonly processing = new Map<bigint, Buffer>();
  /** Devices of serving processes that "died": they read nothing more, and what they write is lost. */
  private readonly dead = new Set<FuseDevice>();
  /** Every device handed out (a serving process each), in order. */
  readonly devices: FuseDevice[] = [];
  /** Every FUSE_NOTIFY_RESEND received. */
  resends = 0;
  /** The INIT flags2 the fake kernel offers (FUSE_HAS_RESEND by default, as Linux 6.9 and later). */
  initFlags2 = InitFlag2.HAS_RESEND;
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
    return this.device();
  }

  /** The same connection, as a process that inherited its descriptor sees it. */
  adoptDevice(): FuseDevice {
    return this.device();
  }

  async connectionOf(): Promise<number | undefined> {
    return FAKE_CONNECTION_ID;
  }

  /** Queues a STATFS of the root, as a statfs(2) of the mountpoint makes the kernel send. */
  provoke(): void {
    this.enqueue(Opcode.STATFS, 1);
  }

  /** The serving process of `device` died (kill -9): it reads and answers nothing more; the connection stays. */
  kill(device: FuseDevice): void {
    this.dead.add(device);
  }

  private device(): FuseDevice {
    const device: FakeDevice = {
      fd: 99,
      read: (buffer) =>
        new Promise((resolve, reject) => {
          if (this.gone) return reject(errnoError('ENODEV'));
          // A dead process's read never returns.
          if (this.dead.has(device)) return;
          this.waitingReads.push({ buffer, resolve, reject, device });
          this.pump();
        }),
      write: (chunks) => {
        if (this.dead.has(device)) return;
        const message = Buffer.concat(chunks);
        const header = decodeOutHeader(message);
        if (header.length !== message.length) throw new Error(`reply length ${header.length} != written ${message.length}`);
        if (header.unique === 0n && header.error === NotifyCode.RESEND) return this.resend();
        // As the kernel: an answer to a request nobody waits for (never read, answered already) is refused.
        // (An INTERRUPT's answer, to an odd id, names the interrupted request: recorded as it is.)
        if (!this.processing.delete(header.unique) && (header.unique & INTERRUPT_UNIQUE_BIT) === 0n) throw errnoError('ENOENT');
        const reply = { header, body: message.subarray(Size.OUT_HEADER) };
        this.replies.set(header.unique, reply);
        this.waitingReplies.get(header.unique)?.(reply);
      },
      close: () => {
        this.closed = true;
      },
    };
    this.devices.push(device);
    return device;
  }

  /** FUSE_NOTIFY_RESEND: every request read and not answered is queued again first, its id marked UNIQUE_RESEND_BIT. */
  private resend(): void {
    this.resends++;
    const again = [...this.processing.values()].map((request) => {
      const copy = Buffer.from(request);
      copy.writeBigUInt64LE(request.readBigUInt64LE(8) | UNIQUE_RESEND_BIT, 8);
      return copy;
    });
    this.processing.clear();
    this.queue.unshift(...again);
    this.pump();
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
    init.writeUInt32LE(this.initFlags2, 16); // flags2 (INIT_EXT is among the flags offered)
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
    // Reads of devices that died since they were asked for take nothing.
    for (let i = this.waitingReads.length - 1; i >= 0; i--) if (this.dead.has(this.waitingReads[i]?.device as FuseDevice)) this.waitingReads.splice(i, 1);
    while (this.queue.length > 0 && this.waitingReads.length > 0) {
      const request = this.queue.shift() as Buffer;
      const read = this.waitingReads.shift() as (typeof this.waitingReads)[number];
      request.copy(read.buffer);
      const opcode = request.readUInt32LE(4);
      if (opcode !== Opcode.FORGET && opcode !== Opcode.BATCH_FORGET && opcode !== Opcode.INTERRUPT) this.processing.set(request.readBigUInt64LE(8), request);
      read.resolve(request.length);
    }
  }
}
