// How long a FUSE request may keep its caller waiting, and the requests in flight that a deadline or the
// kernel's INTERRUPT can end early. A caller blocked in a FUSE request cannot be killed until the
// filesystem answers (the kernel waits uninterruptibly once the request was read), so every request that
// waits on the object store gets one deadline, whatever the timeouts and retries underneath, and the
// session answers at that deadline even if its handler is still waiting.
import { constants as osConstants } from 'node:os';
import { FuseError } from './operations';
import { Opcode } from './protocol';

const { errno } = osConstants;

/** The three deadlines of a mount, in milliseconds (see MountConfig's `deadlines` for the defaults and why). */
export interface OperationDeadlines {
  /** LOOKUP, GETATTR, READDIR, OPEN, CREATE, MKDIR, UNLINK...: the whole operation. */
  metadataMs: number;
  /** READ: the whole read. */
  readMs: number;
  /** WRITE, FLUSH, FSYNC, SETATTR (truncate), RENAME: time without progress (a part or an object the store acknowledged). */
  writeMs: number;
}

/** One request's deadline: over the whole request, or over the time since its last progress. */
export interface RequestDeadline {
  kind: 'total' | 'idle';
  ms: number;
}

/** The class of a request, as its deadline sees it. */
export type DeadlineClass = 'metadata' | 'read' | 'write';

/** Requests that never wait on the store, or that no caller waits for: no deadline, never interrupted. */
const UNBOUNDED: ReadonlySet<number> = new Set([
  Opcode.INIT, Opcode.DESTROY, Opcode.FORGET, Opcode.BATCH_FORGET, Opcode.INTERRUPT,
  // RELEASE is sent after close(2) has returned: nobody waits for it, and it must finish what it publishes.
  Opcode.RELEASE, Opcode.RELEASEDIR,
]);

/** Requests whose work is proportional to the data they move: bounded by time without progress. */
const WRITE_CLASS: ReadonlySet<number> = new Set([Opcode.WRITE, Opcode.FLUSH, Opcode.FSYNC, Opcode.SETATTR, Opcode.RENAME, Opcode.RENAME2]);

/** The deadline class of `opcode`, or undefined for a request that gets none. */
export function deadlineClassOf(opcode: number): DeadlineClass | undefined {
  if (UNBOUNDED.has(opcode)) return undefined;
  if (opcode === Opcode.READ) return 'read';
  if (WRITE_CLASS.has(opcode)) return 'write';
  return 'metadata';
}

/** The deadline of a request with `opcode` under `deadlines`, or undefined when it gets none. */
export function deadlineOf(opcode: number, deadlines: OperationDeadlines): RequestDeadline | undefined {
  switch (deadlineClassOf(opcode)) {
    case 'metadata':
      return { kind: 'total', ms: deadlines.metadataMs };
    case 'read':
      return { kind: 'total', ms: deadlines.readMs };
    case 'write':
      return { kind: 'idle', ms: deadlines.writeMs };
    default:
      return undefined;
  }
}

/** The reason a request's signal aborts when its caller got a signal: the caller is answered EINTR. */
export class RequestInterrupted extends FuseError {
  override readonly name: string = 'RequestInterrupted';

  constructor(operation: string) {
    super(errno.EINTR, `${operation} interrupted: its caller received a signal`);
  }
}

/** The reason a request's signal aborts at its deadline: the caller is answered EIO. */
export class DeadlineExceeded extends FuseError {
  override readonly name: string = 'DeadlineExceeded';

  constructor(
    operation: string,
    readonly deadline: RequestDeadline,
  ) {
    super(errno.EIO, `${operation} exceeded its deadline: ${deadline.kind === 'idle' ? 'no progress for' : 'not done in'} ${deadline.ms} ms`);
  }
}

/**
 * One request the session is serving: why it ended early, if it did (an INTERRUPT, its deadline), told to `onEnd`
 * and to the signals handed to its handler. The signals are made only when a handler asks for them (most never do:
 * a READ does not), since they are the costly part of a request on the hot path.
 */
export class InFlightRequest {
  private stop: AbortController | undefined;
  private expiry: AbortController | undefined;
  private interruptedBy: RequestInterrupted | undefined;
  private expiredBy: DeadlineExceeded | undefined;
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param onEnd called once when the request ends before its handler answered: at the INTERRUPT (a RequestInterrupted)
   *   and at the deadline (a DeadlineExceeded), which comes even after an interrupt.
   */
  constructor(
    readonly operation: string,
    private readonly deadline: RequestDeadline | undefined,
    private readonly onEnd: (reason: RequestInterrupted | DeadlineExceeded) => void,
  ) {
    this.arm();
  }

  /** Aborts when the caller is interrupted (RequestInterrupted) or the deadline passes (DeadlineExceeded), whichever is first. */
  get signal(): AbortSignal {
    if (!this.stop) {
      this.stop = new AbortController();
      const reason = this.interruptedBy ?? this.expiredBy;
      if (reason) this.stop.abort(reason);
    }
    return this.stop.signal;
  }

  /** Aborts when the deadline passes (DeadlineExceeded), also after an interrupt: a handler that ignored it is cut off then. */
  get expired(): AbortSignal {
    if (!this.expiry) {
      this.expiry = new AbortController();
      if (this.expiredBy) this.expiry.abort(this.expiredBy);
    }
    return this.expiry.signal;
  }

  /** The handler made progress: an idle deadline starts over (a total one does not move). */
  readonly progress = (): void => {
    if (this.deadline?.kind === 'idle' && this.timer !== undefined) this.arm();
  };

  /** The kernel sent INTERRUPT for this request; the deadline keeps running. */
  interrupt(): void {
    if (this.interruptedBy || this.expiredBy) return;
    this.interruptedBy = new RequestInterrupted(this.operation);
    this.stop?.abort(this.interruptedBy);
    this.onEnd(this.interruptedBy);
  }

  /** The request was answered: no deadline any more. */
  finish(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    const deadline = this.deadline;
    if (!deadline) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const reason = new DeadlineExceeded(this.operation, deadline);
      this.expiredBy = reason;
      this.expiry?.abort(reason);
      if (this.stop && !this.stop.signal.aborted) this.stop.abort(reason);
      this.onEnd(reason);
    }, deadline.ms);
  }
}
