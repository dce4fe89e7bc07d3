// The handler interface a filesystem implements to serve a FuseSession. Every method is optional:
// the session answers ENOSYS for a missing one (and for FORGET, which has no reply, does nothing).
// A method fails by throwing FuseError(errno); anything else thrown becomes EIO and is logged.
import type {
  AttrReply,
  DirectoryEntry,
  DirectoryEntryPlus,
  EntryReply,
  InitRequest,
  OpenReply,
  RenameRequest,
  SetattrRequest,
  StatfsReply,
} from './protocol';

export type { AttrReply, Attributes, DirectoryEntry, DirectoryEntryPlus, EntryReply, InitRequest, OpenReply, RenameRequest, SetattrRequest, StatfsReply } from './protocol';

/** Who asked: the calling process's credentials, from the request header. */
export interface RequestContext {
  /** The kernel's request id, for logs. */
  unique: bigint;
  uid: number;
  gid: number;
  pid: number;
  /**
   * Aborts when the session stops waiting for this request: its caller got a signal (reason: RequestInterrupted,
   * answered EINTR) or its deadline passed (DeadlineExceeded, answered EIO). The session answers at that moment
   * whatever the handler does, except for WRITE, which it answers only on a deadline: a WRITE handler ends its own
   * wait on an interrupt, returning the bytes it took or throwing the reason when it took none, so that EINTR always
   * means "nothing written".
   */
  signal: AbortSignal;
  /** Aborts when the request's deadline passes (DeadlineExceeded), even when `signal` aborted before at an interrupt. */
  expired: AbortSignal;
  /** Tells the session the request progressed (the store acknowledged a part or an object): an idle deadline starts over. */
  progress(): void;
}

/** The answer to CREATE: the new entry and its open handle in one reply. */
export interface CreateReply {
  entry: EntryReply;
  open: OpenReply;
}

/** The FUSE requests a filesystem may serve; node ids and handles are the ones it handed out. */
export interface FuseOperations {
  /** Called once the kernel and the session agreed on the protocol (after FUSE_INIT). */
  init?(request: InitRequest): void;
  /** The kernel is going away (DESTROY); release everything. */
  destroy?(): void;

  /** Resolves `name` in directory `parent`; the kernel now holds one more lookup on the returned node. */
  lookup?(context: RequestContext, parent: number, name: string): Promise<EntryReply>;
  /** The kernel dropped `lookups` references to `nodeId` (FORGET/BATCH_FORGET: never answered). */
  forget?(nodeId: number, lookups: number): void;
  /** The attributes of a node; `handle` is set when asked through an open file. */
  getattr?(context: RequestContext, nodeId: number, handle?: number): Promise<AttrReply>;
  /** Changes attributes (truncate, chmod, utimes...). */
  setattr?(context: RequestContext, nodeId: number, changes: SetattrRequest): Promise<AttrReply>;
  /** Checks access(2) permission bits (only sent without default_permissions). */
  access?(context: RequestContext, nodeId: number, mask: number): Promise<void>;
  /** Filesystem-wide numbers for statfs(2)/df. */
  statfs?(context: RequestContext, nodeId: number): Promise<StatfsReply>;

  /** Opens a file; `flags` are the open(2) flags. */
  open?(context: RequestContext, nodeId: number, flags: number): Promise<OpenReply>;
  /** Reads up to `size` bytes at `offset`; returning fewer means end of file. */
  read?(context: RequestContext, nodeId: number, handle: number, offset: number, size: number): Promise<Buffer>;
  /** Writes `data` at `offset`; returns the bytes written. `data` is only valid until the promise settles. */
  write?(context: RequestContext, nodeId: number, handle: number, offset: number, data: Buffer): Promise<number>;
  /** Called on every close(2) of a file descriptor (possibly several per open, after dup). */
  flush?(context: RequestContext, nodeId: number, handle: number): Promise<void>;
  /** Makes written data durable. */
  fsync?(context: RequestContext, nodeId: number, handle: number, dataOnly: boolean): Promise<void>;
  /**
   * An OPEN or CREATE whose handle the kernel never got (the session had already answered it at an interrupt or a
   * deadline): close it without publishing anything, as if it had never been opened.
   */
  discard?(nodeId: number, handle: number): void;
  /** The last reference to the open file is gone. */
  release?(context: RequestContext, nodeId: number, handle: number, flags: number): Promise<void>;
  /** Creates and opens a file in one step. */
  create?(context: RequestContext, parent: number, name: string, mode: number, flags: number, umask: number): Promise<CreateReply>;

  /** Opens a directory for reading. */
  opendir?(context: RequestContext, nodeId: number, flags: number): Promise<OpenReply>;
  /**
   * Lists entries starting after the one whose nextOffset is `offset` (0: from the start). Return as
   * many as convenient; the session packs those that fit in `size` bytes and the kernel asks again.
   */
  readdir?(context: RequestContext, nodeId: number, handle: number, offset: number, size: number): Promise<DirectoryEntry[]>;
  /**
   * READDIRPLUS: like readdir, with each entry's attributes, so `ls -l` needs no LOOKUP per entry.
   * The kernel holds one more lookup on the node of every entry returned with an `entry` (never '.'
   * and '..'), so return only entries that fit in `size` bytes (direntPlusSize) and count each one.
   */
  readdirplus?(context: RequestContext, nodeId: number, handle: number, offset: number, size: number): Promise<DirectoryEntryPlus[]>;
  /** The directory handle is no longer used. */
  releasedir?(context: RequestContext, nodeId: number, handle: number): Promise<void>;
  /** Makes a directory's changes durable. */
  fsyncdir?(context: RequestContext, nodeId: number, handle: number, dataOnly: boolean): Promise<void>;

  /** Creates a directory. */
  mkdir?(context: RequestContext, parent: number, name: string, mode: number, umask: number): Promise<EntryReply>;
  /** Creates a special or regular file (mknod(2)). */
  mknod?(context: RequestContext, parent: number, name: string, mode: number, rdev: number, umask: number): Promise<EntryReply>;
  /** Removes an empty directory. */
  rmdir?(context: RequestContext, parent: number, name: string): Promise<void>;
  /** Removes a file. */
  unlink?(context: RequestContext, parent: number, name: string): Promise<void>;
  /** Renames `name` in `parent` to `request.newName` in `request.newParent`. */
  rename?(context: RequestContext, parent: number, request: RenameRequest): Promise<void>;
}

/** How a handler says a request failed: a positive errno (ENOENT...), sent to the kernel negated. */
export class FuseError extends Error {
  override readonly name: string = 'FuseError';

  constructor(
    readonly errno: number,
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(message ?? `errno ${errno}`, options);
  }
}
