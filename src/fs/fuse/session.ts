// A FUSE session: one mount, served by reading requests from /dev/fuse and dispatching each to a
// FuseOperations handler. The device is read by a worker thread (device-reader.ts), or, for a device without
// one, by `deviceReaders` reads on the libuv threadpool; every request is handled asynchronously as soon as it
// is read, so many requests are in flight at once. Replies are written synchronously, one write per reply, each
// right after options.beforeReply (the session journal writes what the kernel is about to be given).
import { constants as osConstants } from 'node:os';
import type { Logger } from '../../log/logger';
import { linuxFuseSystem, type FuseDevice, type FuseSystem } from './device';
import { deadlineOf, DeadlineExceeded, InFlightRequest, RequestInterrupted, type OperationDeadlines } from './deadlines';
import { FuseError, type FuseOperations, type RequestContext } from './operations';
import {
  decodeAccessIn,
  decodeBatchForgetIn,
  decodeCreateIn,
  decodeForgetIn,
  decodeFlushIn,
  decodeFsyncIn,
  decodeGetattrIn,
  decodeInHeader,
  decodeInitIn,
  decodeInterruptIn,
  decodeMkdirIn,
  decodeMknodIn,
  decodeName,
  decodeOpenIn,
  decodeReadIn,
  decodeReleaseIn,
  decodeRenameIn,
  decodeSetattrIn,
  decodeWriteIn,
  encodeAttrOut,
  encodeDirents,
  encodeDirentsPlus,
  encodeEntryOut,
  encodeInitOut,
  encodeNotifyResend,
  encodeOpenOut,
  encodeOutHeader,
  encodeStatfsOut,
  encodeWriteOut,
  InitFlag,
  InitFlag2,
  KERNEL_MINOR_VERSION,
  KERNEL_VERSION,
  MAX_PAGES,
  MAX_WRITE,
  MINIMUM_KERNEL_MINOR_VERSION,
  Opcode,
  opcodeName,
  REQUEST_BUFFER_SIZE,
  Size,
  type EntryReply,
  type InHeader,
  type InitRequest,
  UNIQUE_RESEND_BIT,
} from './protocol';

const { errno } = osConstants;

/** Capabilities granary asks for in FUSE_INIT (each only if the kernel offers it). */
export const DEFAULT_INIT_FLAGS =
  InitFlag.ASYNC_READ | // several READs per file in flight (readahead)
  InitFlag.BIG_WRITES | // WRITEs up to max_write instead of 4 KiB
  InitFlag.MAX_PAGES | // honour max_pages: 1 MiB READ/WRITE requests
  InitFlag.PARALLEL_DIROPS | // concurrent LOOKUP/READDIR in one directory
  InitFlag.AUTO_INVAL_DATA | // drop cached pages when a refreshed mtime/size says the object changed
  InitFlag.DO_READDIRPLUS | // READDIRPLUS: attributes with each entry, no LOOKUP per entry after a listing
  InitFlag.READDIRPLUS_AUTO; // ...when the kernel sees lookups follow a listing (and for its first page)

/** The INIT flags that make the kernel send READDIRPLUS, only agreed when the handler serves it. */
const READDIRPLUS_FLAGS = InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO;

/** How long to wait for device reads to end after aborting the connection (ms). */
const ABORT_GRACE_MS = 2000;

/** Requests larger than this hand their read buffer to the handler instead of being copied out of it. */
const COPY_LIMIT = 64 * 1024;

/** Options of one session; see MountConfig for the documented defaults. */
export interface FuseSessionOptions {
  mountpoint: string;
  /** The source column in mountinfo (e.g. "s3://bucket/prefix"); never holds credentials. */
  fsname: string;
  /** The type is "fuse.<subtype>". */
  subtype: string;
  /** Mount with `ro`: the kernel refuses every write itself. */
  readOnly: boolean;
  /** Let the kernel check permission bits against the caller (mode/uid/gid), so handlers need not. */
  defaultPermissions: boolean;
  /** Reads of /dev/fuse kept outstanding (each holds one threadpool thread). */
  deviceReaders: number;
  /** init_out.max_background: async requests (readahead) the kernel keeps in flight. */
  maxBackground: number;
  /** Upper bound on the kernel's readahead, in bytes (the smaller of this and the kernel's offer wins). */
  maxReadahead: number;
  /** How long unmount() waits for the kernel to end the connection before giving up, in ms. */
  unmountTimeoutMs: number;
  /** FUSE_INIT capabilities to request (DEFAULT_INIT_FLAGS unless the filesystem needs more). */
  initFlags?: number;
  /** uid/gid recorded as the mount's owner (user_id/group_id). */
  ownerUid?: number;
  ownerGid?: number;
  /** How long each kind of request may keep its caller waiting (see deadlines.ts); none when absent. */
  deadlines?: OperationDeadlines;
  /**
   * An inherited /dev/fuse descriptor to serve instead of opening one (the mount holder's: it keeps the connection
   * open across the deaths of the processes that serve it).
   */
  deviceFd?: number;
  /** Hears the protocol INIT agreed, before the kernel has the answer (to keep it for a successor process). */
  agreed?: (protocol: NegotiatedProtocol) => void;
  /**
   * Runs right before each reply is written: what the reply holds (a new node id, a handle, the protocol) is written
   * where a successor process finds it first (the session journal's flush). When it throws, a successful answer is
   * not sent: the request fails with EIO and what the answer held is undone; an error reply holds nothing and goes.
   */
  beforeReply?: () => void;
}

/** What a handled request answers: a body (or none), and how to undo what the answer gives the kernel if it never gets it. */
interface Answer {
  body?: Buffer;
  /** The kernel did not get this answer (the session had answered at an interrupt or a deadline): drop what it holds. */
  undo?: () => void;
  /** Runs once the answer is written: what must follow the kernel's having it (INIT's readiness). */
  sent?: () => void;
}

/** The answer of a request that gets no reply (FORGET, BATCH_FORGET). */
const NO_REPLY = null;

/** What was agreed with the kernel in FUSE_INIT. */
export interface NegotiatedProtocol {
  major: number;
  minor: number;
  flags: number;
  maxReadahead: number;
  /** The kernel can send again the requests a dead serving process had read (FUSE_HAS_RESEND, Linux 6.9). */
  kernelCanResend: boolean;
}

/** What a serving process knows of its unanswered requests (see FuseSession.requestsInFlight). */
export interface RequestsInFlight {
  inFlight: bigint[];
  highest: bigint;
}

/** How a takeover went: whether the kernel sends again what the dead process had read, else how many of those got EIO. */
export interface TakeoverOutcome {
  resent: boolean;
  failed: number;
}

/** The kernel steps request ids by 2 (an odd id names an INTERRUPT). */
const UNIQUE_STEP = 2n;

/** How long a successor without FUSE_NOTIFY_RESEND waits for a request to learn the kernel's next id. */
const NEXT_REQUEST_WAIT_MS = 10_000;

/**
 * How long after a LOOKUP was answered EIO at its deadline the next LOOKUP of the same name, while the first still
 * waits on the store, is answered EIO at once. The kernel takes a failed revalidation of a cached name for a stale
 * entry and looks the name up afresh straight away, so without this one stat(2) or `ls` of a cached name on a stalled
 * store waited twice the metadata deadline (measured: 60 s for a 30 s deadline). A caller's own retry a moment later
 * asks the store again.
 */
const LOOKUP_RETRY_WINDOW_MS = 1000;

/** Serves one FUSE mount: mount(), then requests flow to `operations` until unmount() or an external umount. */
export class FuseSession {
  private readonly system: FuseSystem;
  private device: FuseDevice | undefined;
  private mounted = false;
  private connection: number | undefined;
  private activeReaders = 0;
  private protocol: NegotiatedProtocol | undefined;
  /** Requests read and not yet answered, by id: what an INTERRUPT names. */
  private readonly inFlight = new Map<bigint, InFlightRequest>();
  /** LOOKUPs answered EIO at their deadline whose handlers still wait, by parent and name: when each was answered. */
  private readonly lookupsPastDeadline = new Map<string, number>();
  /** The highest request id read so far (INTERRUPTs aside). */
  private highestUnique = 0n;
  /** Hears the id of the next request read (INTERRUPTs aside), once: how a successor learns where the dead process stopped. */
  private onNextRequest: ((unique: bigint) => void) | undefined;
  private resolveInitialized!: (protocol: NegotiatedProtocol) => void;
  private resolveClosed!: () => void;
  /** Resolves once the kernel's FUSE_INIT has been answered: the mount serves requests. */
  readonly initialized: Promise<NegotiatedProtocol>;
  /** Resolves when the connection has ended (unmounted by us or by anyone else). */
  readonly closed: Promise<void>;

  constructor(
    private readonly options: FuseSessionOptions,
    private readonly operations: FuseOperations,
    private readonly logger: Logger,
    system: FuseSystem = linuxFuseSystem,
  ) {
    this.system = system;
    this.initialized = new Promise((resolve) => (this.resolveInitialized = resolve));
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  /** The protocol agreed with the kernel, once initialized. */
  get negotiated(): NegotiatedProtocol | undefined {
    return this.protocol;
  }

  /** The requests read and not answered yet, and the highest id read: what a successor answers EIO without FUSE_NOTIFY_RESEND. */
  requestsInFlight(): RequestsInFlight {
    return { inFlight: [...this.inFlight.keys()], highest: this.highestUnique };
  }

  /**
   * Mounts and starts serving; resolves once the kernel's FUSE_INIT is answered (the mount is live).
   * Steps: 1. open /dev/fuse; 2. mount(8) with the device as fd; 3. start the readers; 4. wait for INIT.
   * On failure it undoes what it did (closes the device, unmounts).
   */
  async mount(): Promise<NegotiatedProtocol> {
    if (this.device) throw new Error('FuseSession.mount() called twice');
    const device = this.options.deviceFd !== undefined ? this.system.adoptDevice(this.options.deviceFd) : await this.system.openDevice();
    this.device = device;
    const { options } = this;
    const mountOptions = [
      'rootmode=40000', // the root is a directory (S_IFDIR, octal)
      `user_id=${options.ownerUid ?? process.getuid?.() ?? 0}`,
      `group_id=${options.ownerGid ?? process.getgid?.() ?? 0}`,
      'allow_other', // pods of any uid use the mount, not only the mount process's user
      // Every object is a file any bucket writer controls: the kernel must never honour a setuid/setgid
      // bit on it or open it as a device, whatever modes the filesystem reports.
      'nosuid',
      'nodev',
      ...(options.defaultPermissions ? ['default_permissions'] : []),
      ...(options.readOnly ? ['ro'] : []),
    ];
    try {
      this.connection = await this.system.mount({ device, mountpoint: options.mountpoint, type: `fuse.${options.subtype}`, source: options.fsname, options: mountOptions });
    } catch (error) {
      device.close();
      this.device = undefined;
      throw error;
    }
    this.mounted = true;
    // Reading before mount(2) ties the device to a connection would fail with EPERM, hence here.
    this.startReading(device);
    const outcome = await Promise.race([this.initialized, this.closed.then(() => undefined)]);
    if (!outcome) {
      await this.unmount().catch(() => undefined);
      throw new Error(`the kernel closed the FUSE connection on ${options.mountpoint} before FUSE_INIT completed`);
    }
    return outcome;
  }

  /**
   * Takes over a live connection whose serving process died (the descriptor inherited through options.deviceFd, the
   * protocol its INIT agreed): serves it from now on without mounting or INIT, and asks the kernel to send again the
   * requests the dead process had read but not answered (FUSE_NOTIFY_RESEND), when it can; on an older kernel their
   * callers keep waiting until unmount (the README says so). Resolves once requests flow.
   */
  async adopt(protocol: NegotiatedProtocol, orphans?: RequestsInFlight): Promise<TakeoverOutcome> {
    if (this.device) throw new Error('FuseSession.adopt() on a session already serving');
    if (this.options.deviceFd === undefined) throw new Error('FuseSession.adopt() needs the inherited descriptor (options.deviceFd)');
    const device = this.system.adoptDevice(this.options.deviceFd);
    this.device = device;
    this.mounted = true;
    this.protocol = protocol;
    this.connection = await this.system.connectionOf(this.options.mountpoint);
    // Armed before the readers start, so the first request read is the one heard.
    const next = !protocol.kernelCanResend && orphans ? this.nextRequestUnique() : undefined;
    this.startReading(device);
    this.resolveInitialized(protocol);
    if (protocol.kernelCanResend) {
      try {
        device.write([encodeNotifyResend()]);
        return { resent: true, failed: 0 };
      } catch (error) {
        this.logger.error({ err: error, mountpoint: this.options.mountpoint }, 'the kernel refused FUSE_NOTIFY_RESEND: requests the dead process had read stay unanswered');
        return { resent: false, failed: 0 };
      }
    }
    if (!next || !orphans) return { resent: false, failed: 0 };
    // No resend (before Linux 6.9): the dead process's callers get EIO instead of waiting until unmount. They are the
    // requests it had in flight at its last record, and any it read after: ids above that record's highest and below
    // the first this process reads (ids grow in queue order). A statfs makes sure one comes.
    this.system.provoke(this.options.mountpoint);
    const first = await next;
    if (first === undefined) {
      this.logger.error({ mountpoint: this.options.mountpoint }, 'no request came after the takeover: the callers of what the dead process had read keep waiting');
      return { resent: false, failed: 0 };
    }
    let failed = 0;
    const fail = (unique: bigint) => {
      if (this.writeQuietly([encodeOutHeader(unique, -errno.EIO, 0)])) failed++;
    };
    for (const unique of orphans.inFlight) if (unique < first) fail(unique);
    for (let unique = orphans.highest + UNIQUE_STEP; unique < first; unique += UNIQUE_STEP) fail(unique);
    return { resent: false, failed };
  }

  /** The id of the next request read (INTERRUPTs aside), or undefined when none comes within NEXT_REQUEST_WAIT_MS. */
  private nextRequestUnique(): Promise<bigint | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.onNextRequest = undefined;
        resolve(undefined);
      }, NEXT_REQUEST_WAIT_MS);
      this.onNextRequest = (unique) => {
        clearTimeout(timer);
        this.onNextRequest = undefined;
        resolve(unique);
      };
    });
  }

  /**
   * Unmounts: umount, and if that fails (busy) umount -l, which detaches now and lets open files
   * drain; then waits up to unmountTimeoutMs for the kernel to end the connection. Past that, it
   * aborts the connection (open files then fail with ENOTCONN): a reader blocked in read(2) would
   * otherwise keep the process from exiting, since libuv joins its threadpool at exit.
   */
  async unmount(): Promise<void> {
    if (!this.mounted) return;
    this.mounted = false;
    const { mountpoint, unmountTimeoutMs } = this.options;
    if (this.activeReaders > 0) {
      try {
        await this.system.unmount(mountpoint, false);
      } catch (error) {
        this.logger.warn({ mountpoint, err: error }, 'umount failed; detaching lazily (umount -l)');
        await this.system.unmount(mountpoint, true);
      }
    }
    if (await this.closedWithin(unmountTimeoutMs)) return;
    this.logger.warn({ mountpoint, unmountTimeoutMs, connection: this.connection }, 'files still open after unmount; aborting the FUSE connection');
    if (this.connection === undefined) return;
    try {
      await this.system.abort(this.connection);
    } catch (error) {
      this.logger.error({ mountpoint, err: error }, 'could not abort the FUSE connection');
      return;
    }
    if (!(await this.closedWithin(ABORT_GRACE_MS))) this.logger.error({ mountpoint }, 'the FUSE connection did not end after abort');
  }

  /** True once the connection ended, false when `ms` passed first. */
  private async closedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const closed = await Promise.race([this.closed.then(() => true), timedOut]);
    clearTimeout(timer);
    return closed;
  }

  /** Starts taking requests from the device: from its worker when it has one, else `deviceReaders` read loops. */
  private startReading(device: FuseDevice): void {
    if (!device.readOnWorker) {
      for (let i = 0; i < Math.max(1, this.options.deviceReaders); i++) void this.readLoop(device);
      return;
    }
    this.activeReaders++;
    device.readOnWorker({
      // dispatch() settles only once the handler has finished, even one answered early: then nothing holds the bytes.
      request: (request, recycle) => {
        const dispatched = this.dispatch(request);
        if (recycle) void dispatched.finally(recycle);
      },
      end: (error) => {
        if (error) this.logger.error({ err: error, mountpoint: this.options.mountpoint }, 'reading /dev/fuse failed; stopping the session');
        this.activeReaders--;
        if (this.activeReaders === 0) this.end(device);
      },
    });
  }

  private async readLoop(device: FuseDevice): Promise<void> {
    this.activeReaders++;
    let buffer = Buffer.allocUnsafe(REQUEST_BUFFER_SIZE);
    try {
      while (true) {
        let length: number;
        try {
          length = await device.read(buffer);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          // ENOENT: the request we were about to read was interrupted; EINTR/EAGAIN: try again.
          if (code === 'ENOENT' || code === 'EINTR' || code === 'EAGAIN') continue;
          // ENODEV: the filesystem was unmounted; the normal end of a session.
          if (code !== 'ENODEV') this.logger.error({ err: error, mountpoint: this.options.mountpoint }, 'reading /dev/fuse failed; stopping the session');
          return;
        }
        if (length === 0) return;
        let request: Buffer;
        if (length > COPY_LIMIT) {
          // A big WRITE: hand this buffer over rather than copy 1 MiB, and read into a fresh one.
          request = buffer.subarray(0, length);
          buffer = Buffer.allocUnsafe(REQUEST_BUFFER_SIZE);
        } else {
          request = Buffer.from(buffer.subarray(0, length));
        }
        void this.dispatch(request);
      }
    } finally {
      this.activeReaders--;
      if (this.activeReaders === 0) this.end(device);
    }
  }

  private end(device: FuseDevice): void {
    // Only once no thread is blocked in read() on it: closing an fd another thread reads is a race.
    this.mounted = false;
    if (this.device === device) {
      this.device = undefined;
      try {
        device.close();
      } catch {
        // Already closed.
      }
    }
    this.resolveClosed();
  }

  /**
   * Decodes one request and answers it (or not: FORGET, BATCH_FORGET and INTERRUPT get no reply). The answer is the
   * handler's, or, when the request's signal aborts first (an INTERRUPT, its deadline), that abort's errno at once:
   * the handler then finishes in the background and what its late answer holds (a lookup, an open handle) is undone.
   */
  async dispatch(request: Buffer): Promise<void> {
    let header: InHeader;
    try {
      header = decodeInHeader(request);
    } catch (error) {
      this.logger.error({ err: error, length: request.length }, 'unreadable FUSE request header; dropped');
      return;
    }
    // Extensions (8-byte units) trail the body; granary negotiates none, but skip them if present.
    const body = request.subarray(Size.IN_HEADER, Math.max(Size.IN_HEADER, Math.min(request.length, header.length) - header.totalExtensionLength * 8));
    if (header.opcode === Opcode.INTERRUPT) return this.interrupt(header.unique, body);
    const operation = opcodeName(header.opcode);
    const deadline = this.options.deadlines && this.protocol ? deadlineOf(header.opcode, this.options.deadlines) : undefined;
    const { unique, nodeId } = header;
    // Only a kernel that cannot resend needs the ids kept (see requestsInFlight): elsewhere no bigint work per request.
    if (this.protocol?.kernelCanResend === false) {
      const plainUnique = unique & ~UNIQUE_RESEND_BIT;
      if (plainUnique > this.highestUnique) this.highestUnique = plainUnique;
      this.onNextRequest?.(plainUnique);
    }
    const isLookup = header.opcode === Opcode.LOOKUP;
    // Made only when a LOOKUP has passed its deadline: no string per LOOKUP otherwise.
    const lookupId = () => `${nodeId}/${body.toString('latin1')}`;
    if (isLookup && this.lookupsPastDeadline.size > 0) {
      const since = this.lookupsPastDeadline.get(lookupId());
      if (since !== undefined && Date.now() - since < LOOKUP_RETRY_WINDOW_MS) {
        this.logger.debug({ op: operation, nodeId }, 'LOOKUP of a name whose last LOOKUP just passed its deadline and still waits; answered EIO at once');
        this.replyError(unique, errno.EIO);
        return;
      }
    }
    let answered = false;
    const answer = (): boolean => {
      if (answered) return false;
      answered = true;
      inFlight.finish();
      this.inFlight.delete(unique);
      return true;
    };
    // Registered before the first await, so an INTERRUPT read right after this request finds it.
    const inFlight = new InFlightRequest(operation, deadline, (reason) => {
      // A WRITE is answered early only at its deadline: on an interrupt its handler decides (see RequestContext.signal).
      if (header.opcode === Opcode.WRITE && reason instanceof RequestInterrupted) return;
      if (!answer()) return;
      if (reason instanceof DeadlineExceeded) {
        // A LOOKUP names what it looked for (the name without its NUL): which file the stalled store held up.
        const end = isLookup ? body.indexOf(0) : -1;
        const name = isLookup ? { name: body.toString('utf8', 0, end < 0 ? body.length : end) } : {};
        this.logger.warn({ op: operation, nodeId, ...name, deadline: reason.deadline }, `${reason.message}; answered EIO`);
      }
      if (reason instanceof DeadlineExceeded && isLookup) this.lookupsPastDeadline.set(lookupId(), Date.now());
      else this.logger.debug({ op: operation, nodeId, unique: String(unique) }, 'FUSE request interrupted; answered EINTR');
      this.replyError(unique, reason.errno);
    });
    this.inFlight.set(unique, inFlight);
    const context: RequestContext = {
      unique, uid: header.uid, gid: header.gid, pid: header.pid,
      get signal() {
        return inFlight.signal;
      },
      get expired() {
        return inFlight.expired;
      },
      progress: inFlight.progress,
    };
    try {
      const handled = await this.handle(header, body, context);
      if (!answer()) {
        // Answered already at an interrupt or the deadline: the kernel never gets this answer, so what it holds goes back.
        handled?.undo?.();
        return;
      }
      if (handled !== NO_REPLY) {
        if (!this.reply(unique, handled.body)) {
          // What the answer holds could not be kept for a successor: the kernel must not have it either.
          handled.undo?.();
          this.write(unique, [encodeOutHeader(unique, -errno.EIO, 0)]);
          return;
        }
        handled.sent?.();
      }
    } catch (error) {
      if (!answer()) {
        this.logger.debug({ op: operation, nodeId, err: error }, 'FUSE request failed after it was answered');
        return;
      }
      if (error instanceof FuseError) {
        this.replyError(unique, error.errno);
      } else {
        this.logger.error({ err: error, op: operation, nodeId }, 'FUSE request failed unexpectedly');
        this.replyError(unique, errno.EIO);
      }
    } finally {
      // The store answered this name (or failed it): its next LOOKUP goes to the handler again.
      if (isLookup && this.lookupsPastDeadline.size > 0) this.lookupsPastDeadline.delete(lookupId());
    }
  }

  /**
   * INTERRUPT: the caller of request `unique` got a signal; its request's signal aborts. One not in flight was either
   * answered already or not read yet (another device reader holds it): EAGAIN makes the kernel send the INTERRUPT
   * again while the request still waits, and drop it otherwise (libfuse does the same).
   */
  private interrupt(ownUnique: bigint, body: Buffer): void {
    const { unique } = decodeInterruptIn(body);
    const target = this.inFlight.get(unique);
    if (target) target.interrupt();
    else this.replyError(ownUnique, errno.EAGAIN);
  }

  /** Runs the handler of one request and returns its answer (NO_REPLY for those the kernel expects none for). */
  private async handle(header: InHeader, body: Buffer, context: RequestContext): Promise<Answer | typeof NO_REPLY> {
    const ops = this.operations;
    const { nodeId } = header;
    const missing = () => {
      throw new FuseError(errno.ENOSYS);
    };
    const done: Answer = {};
    /** An entry answer: the kernel holds one more lookup on its node, which a lost answer gives back. */
    const entry = (reply: EntryReply): Answer => ({ body: encodeEntryOut(reply), undo: () => ops.forget?.(reply.nodeId, 1) });
    if (!this.protocol && header.opcode !== Opcode.INIT) throw new FuseError(errno.EIO, 'request before FUSE_INIT');
    switch (header.opcode) {
      case Opcode.INIT:
        return this.handleInit(decodeInitIn(body));
      case Opcode.DESTROY:
        ops.destroy?.();
        return done;
      case Opcode.FORGET:
        ops.forget?.(nodeId, decodeForgetIn(body).lookups);
        return NO_REPLY;
      case Opcode.BATCH_FORGET:
        for (const forget of decodeBatchForgetIn(body)) ops.forget?.(forget.nodeId, forget.lookups);
        return NO_REPLY;
      case Opcode.LOOKUP:
        if (!ops.lookup) return missing();
        return entry(await ops.lookup(context, nodeId, decodeName(body).name));
      case Opcode.GETATTR:
        if (!ops.getattr) return missing();
        return { body: encodeAttrOut(await ops.getattr(context, nodeId, decodeGetattrIn(body).handle)) };
      case Opcode.SETATTR:
        if (!ops.setattr) return missing();
        return { body: encodeAttrOut(await ops.setattr(context, nodeId, decodeSetattrIn(body))) };
      case Opcode.ACCESS:
        if (!ops.access) return missing();
        await ops.access(context, nodeId, decodeAccessIn(body).mask);
        return done;
      case Opcode.STATFS:
        if (!ops.statfs) return missing();
        return { body: encodeStatfsOut(await ops.statfs(context, nodeId)) };
      case Opcode.OPEN: {
        if (!ops.open) return missing();
        const open = await ops.open(context, nodeId, decodeOpenIn(body).flags);
        return { body: encodeOpenOut(open), undo: () => ops.discard?.(nodeId, open.handle) };
      }
      case Opcode.READ: {
        if (!ops.read) return missing();
        const read = decodeReadIn(body);
        const data = await ops.read(context, nodeId, read.handle, read.offset, read.size);
        return { body: data.length > read.size ? data.subarray(0, read.size) : data };
      }
      case Opcode.WRITE: {
        if (!ops.write) return missing();
        const write = decodeWriteIn(body);
        return { body: encodeWriteOut(await ops.write(context, nodeId, write.handle, write.offset, write.data)) };
      }
      case Opcode.FLUSH:
        if (!ops.flush) return missing(); // the kernel then stops sending FLUSH
        await ops.flush(context, nodeId, decodeFlushIn(body).handle);
        return done;
      case Opcode.FSYNC:
      case Opcode.FSYNCDIR: {
        const fsync = header.opcode === Opcode.FSYNC ? ops.fsync : ops.fsyncdir;
        if (!fsync) return missing();
        const { handle, dataOnly } = decodeFsyncIn(body);
        await fsync.call(ops, context, nodeId, handle, dataOnly);
        return done;
      }
      case Opcode.RELEASE:
      case Opcode.RELEASEDIR: {
        // A release cannot fail from the application's point of view; without a handler, just agree.
        const release = header.opcode === Opcode.RELEASE ? ops.release : ops.releasedir;
        const { handle, flags } = decodeReleaseIn(body);
        if (release) await release.call(ops, context, nodeId, handle, flags);
        return done;
      }
      case Opcode.CREATE: {
        if (!ops.create) return missing(); // the kernel falls back to MKNOD + OPEN
        const create = decodeCreateIn(body);
        const created = await ops.create(context, nodeId, create.name, create.mode, create.flags, create.umask);
        return {
          body: Buffer.concat([encodeEntryOut(created.entry), encodeOpenOut(created.open)]),
          undo: () => {
            ops.discard?.(created.entry.nodeId, created.open.handle);
            ops.forget?.(created.entry.nodeId, 1);
          },
        };
      }
      case Opcode.OPENDIR: {
        if (!ops.opendir) return missing();
        const open = await ops.opendir(context, nodeId, decodeOpenIn(body).flags);
        return { body: encodeOpenOut(open), undo: () => void ops.releasedir?.(context, nodeId, open.handle) };
      }
      case Opcode.READDIR: {
        if (!ops.readdir) return missing();
        const read = decodeReadIn(body);
        const entries = await ops.readdir(context, nodeId, read.handle, read.offset, read.size);
        return { body: encodeDirents(entries, read.size).buffer };
      }
      case Opcode.READDIRPLUS: {
        if (!ops.readdirplus) return missing();
        const read = decodeReadIn(body);
        const entries = await ops.readdirplus(context, nodeId, read.handle, read.offset, read.size);
        const { buffer, count } = encodeDirentsPlus(entries, read.size);
        // Entries the handler counted as lookups but that did not fit would never be forgotten.
        if (count < entries.length) this.logger.error({ nodeId, returned: entries.length, sent: count, size: read.size }, 'READDIRPLUS returned more entries than fit; their lookups leak');
        return {
          body: buffer,
          undo: () => {
            for (const sent of entries.slice(0, count)) if (sent.entry) ops.forget?.(sent.entry.nodeId, 1);
          },
        };
      }
      case Opcode.MKDIR: {
        if (!ops.mkdir) return missing();
        const mkdir = decodeMkdirIn(body);
        return entry(await ops.mkdir(context, nodeId, mkdir.name, mkdir.mode, mkdir.umask));
      }
      case Opcode.MKNOD: {
        if (!ops.mknod) return missing();
        const mknod = decodeMknodIn(body);
        return entry(await ops.mknod(context, nodeId, mknod.name, mknod.mode, mknod.rdev, mknod.umask));
      }
      case Opcode.UNLINK:
        if (!ops.unlink) return missing();
        await ops.unlink(context, nodeId, decodeName(body).name);
        return done;
      case Opcode.RMDIR:
        if (!ops.rmdir) return missing();
        await ops.rmdir(context, nodeId, decodeName(body).name);
        return done;
      case Opcode.RENAME:
      case Opcode.RENAME2:
        if (!ops.rename) return missing();
        await ops.rename(context, nodeId, decodeRenameIn(body, header.opcode === Opcode.RENAME2 ? 2 : 1));
        return done;
      default:
        return missing();
    }
  }

  /**
   * Agrees the protocol. The session counts as initialized only once the kernel has the answer (`sent`): what the
   * mount does next (raising read_ahead_kb) must come after the kernel applies INIT's limits, or INIT would undo it.
   */
  private handleInit(init: InitRequest): Answer {
    if (init.major > KERNEL_VERSION) {
      // The kernel is newer: answer with our major only; it then sends INIT again with ours.
      return { body: encodeInitOut({ major: KERNEL_VERSION, minor: KERNEL_MINOR_VERSION, maxReadahead: 0, flags: 0, maxBackground: 0, congestionThreshold: 0, maxWrite: 0, timeGranularity: 0, maxPages: 0, flags2: 0 }) };
    }
    if (init.major < KERNEL_VERSION || init.minor < MINIMUM_KERNEL_MINOR_VERSION) {
      this.logger.error({ kernel: `${init.major}.${init.minor}`, minimum: `${KERNEL_VERSION}.${MINIMUM_KERNEL_MINOR_VERSION}` }, 'kernel FUSE protocol too old');
      throw new FuseError(errno.EPROTO, 'kernel FUSE protocol too old');
    }
    const { options } = this;
    const minor = Math.min(init.minor, KERNEL_MINOR_VERSION);
    const wanted = (options.initFlags ?? DEFAULT_INIT_FLAGS) & (this.operations.readdirplus ? ~0 : ~READDIRPLUS_FLAGS);
    const flags = (init.flags & wanted) >>> 0;
    const maxReadahead = Math.min(init.maxReadahead, options.maxReadahead);
    const maxBackground = Math.min(0xffff, Math.max(1, options.maxBackground));
    const reply = encodeInitOut({
      major: KERNEL_VERSION,
      minor,
      maxReadahead,
      flags,
      maxBackground,
      congestionThreshold: Math.max(1, Math.floor((maxBackground * 3) / 4)), // libfuse's ratio
      maxWrite: MAX_WRITE,
      timeGranularity: 1, // nanoseconds
      maxPages: MAX_PAGES,
      flags2: 0,
    });
    const protocol: NegotiatedProtocol = { major: KERNEL_VERSION, minor, flags, maxReadahead, kernelCanResend: (init.flags2 & InitFlag2.HAS_RESEND) !== 0 };
    this.protocol = protocol;
    options.agreed?.(protocol);
    return {
      body: reply,
      sent: () => {
        this.logger.info({ mountpoint: options.mountpoint, kernel: `${init.major}.${init.minor}`, agreed: `${KERNEL_VERSION}.${minor}`, flags }, 'FUSE session initialized');
        this.operations.init?.(init);
        this.resolveInitialized(protocol);
      },
    };
  }

  /**
   * Sends a successful reply with an optional body (header and body go out in one write), after options.beforeReply;
   * false, sending nothing, when that failed.
   */
  private reply(unique: bigint, body?: Buffer): boolean {
    if (!this.beforeReply(unique)) return false;
    const length = body?.length ?? 0;
    this.write(unique, body && length > 0 ? [encodeOutHeader(unique, 0, length), body] : [encodeOutHeader(unique, 0, 0)]);
    return true;
  }

  /** Sends an error reply: `errnoValue` is a positive errno, sent negated as the protocol wants. */
  private replyError(unique: bigint, errnoValue: number): void {
    // It holds no id or handle, so it goes even when what came before it could not be kept.
    this.beforeReply(unique);
    this.write(unique, [encodeOutHeader(unique, -Math.abs(errnoValue), 0)]);
  }

  /** Runs options.beforeReply; false (logged) when it threw. */
  private beforeReply(unique: bigint): boolean {
    try {
      this.options.beforeReply?.();
      return true;
    } catch (error) {
      this.logger.error({ err: error, unique: String(unique), mountpoint: this.options.mountpoint }, 'writing what a FUSE reply may hold, for a successor process, failed: a successful reply is answered EIO instead');
      return false;
    }
  }

  /** Writes to the device; false when the kernel refused it (no such request, unmounted). */
  private writeQuietly(chunks: Buffer[]): boolean {
    try {
      this.device?.write(chunks);
      return this.device !== undefined;
    } catch {
      return false;
    }
  }

  private write(unique: bigint, chunks: Buffer[]): void {
    const device = this.device;
    if (!device) return;
    try {
      device.write(chunks);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // ENOENT: the kernel no longer waits for this request (interrupted); ENODEV: unmounted.
      if (code === 'ENOENT' || code === 'ENODEV') this.logger.debug({ unique: String(unique), code }, 'FUSE reply not delivered');
      else this.logger.error({ err: error, unique: String(unique) }, 'writing a FUSE reply failed');
    }
  }
}
