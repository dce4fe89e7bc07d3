// What the kernel holds of a mount's FUSE session, kept where a serving process started after a crash finds it: the
// protocol agreed at INIT, the node ids the kernel knows (with their paths) and the open handles. The kernel keeps
// using those ids and handles across the crash (the connection outlives the process: see the mount holder), so the
// next process must map them exactly as the dead one did.
//
// An append-only file of JSON lines in the volume's state directory. Records are kept in memory as they come and
// written together, with one write(2), right before the kernel gets the next reply (FuseSession's beforeReply): so an
// answer that holds a new id or handle never reaches the kernel before its record, and a process killed right after
// still left the record in the page cache, which its successor reads (the machine crashing ends the mount anyway). A
// listing of many new entries costs one write, not one per entry. Compacted when it holds many more records than live
// entries, by writing the live ones to a new file and renaming it over.
//
// A release (`C`) and a forget (`F`) are no reply's concern: they wait for the next write that holds more. A successor
// that misses them keeps a handle or a node the kernel no longer holds, as it keeps every restored node anyway (their
// lookup counts are unknown): an entry in memory until unmount, never used wrongly, since handles and ids are not
// reused, a later LOOKUP of that path answering the same id gives the kernel a fresh inode, and any record written
// after them (a new node of that path) is written with them, after them. A detach (`X`) is not one of those: missed,
// the successor would answer a new file at that path with the id of the deleted one, which the kernel may still hold.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NegotiatedProtocol, RequestsInFlight } from '../fuse/session';
import type { HandleObserver, HandleRecord } from '../handle-table';
import type { InodeObserver, NodeKind, RestoredNode } from '../inodes';

/** The journal's file name in the state directory. */
export const JOURNAL_FILE = 'session.journal';

/** What a successor needs of the session itself: what INIT agreed (and the kernel offered), and where it is mounted. */
export interface JournaledSession {
  protocol: NegotiatedProtocol;
  /** The mountpoint as the first process resolved it (a successor must not touch the mount before it serves it). */
  mountpoint: string;
}

/** Everything a journal replays to: the protocol, the nodes (a path undefined: detached, still held) and the handles. */
export interface JournalState {
  session: JournaledSession | undefined;
  nodes: Map<number, RestoredNode>;
  handles: Map<number, HandleRecord>;
  /** The requests in flight at the last record of them (kept only where the kernel cannot send them again). */
  requests: RequestsInFlight | undefined;
}

type JournalRecord =
  | ['S', JournaledSession]
  | ['N', number, NodeKind, string]
  | ['M', Array<[number, string]>]
  | ['X', number[]]
  | ['F', number[]]
  | ['O', number, HandleRecord]
  | ['C', number]
  | ['R', string[], string];

/** Records past which a journal is compacted, at least (and past twice its live entries). */
const COMPACT_AFTER_RECORDS = 10_000;

const NOTHING = Buffer.alloc(0);

/** Applies one record to a replay's state. */
function apply(state: JournalState, record: JournalRecord): void {
  switch (record[0]) {
    case 'S':
      state.session = record[1];
      return;
    case 'N':
      state.nodes.set(record[1], { id: record[1], kind: record[2], path: record[3] });
      return;
    case 'M':
      for (const [id, to] of record[1]) {
        const node = state.nodes.get(id);
        if (node) node.path = to;
      }
      return;
    case 'X':
      for (const id of record[1]) {
        const node = state.nodes.get(id);
        if (node) node.path = undefined;
      }
      return;
    case 'F':
      for (const id of record[1]) state.nodes.delete(id);
      return;
    case 'O':
      state.handles.set(record[1], record[2]);
      return;
    case 'C':
      state.handles.delete(record[1]);
      return;
    case 'R':
      state.requests = { inFlight: record[1].map(BigInt), highest: BigInt(record[2]) };
      return;
  }
}

/** The journal of one mount's session (see the file comment): it hears the inode and handle tables' changes. */
export class SessionJournal implements InodeObserver, HandleObserver {
  private fd: number;
  private readonly state: JournalState;
  private records: number;
  /** Lines appended since the last flush. */
  private pending = '';
  /** What the last flush could not write (it failed part way): written first by the next one. */
  private unwritten = NOTHING;
  /** Whether a record not written yet may be held by the next reply (anything but a release or a forget). */
  private replyWaits = false;
  /** Given up (abandon()): it keeps nothing more, and its file is gone. */
  private abandoned = false;

  private constructor(
    private readonly file: string,
    state: JournalState,
    records: number,
  ) {
    this.state = state;
    this.records = records;
    this.fd = fs.openSync(file, 'a');
  }

  /** A new journal for a new session, replacing whatever an earlier session left in `dir`. */
  static create(dir: string): SessionJournal {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, JOURNAL_FILE);
    fs.rmSync(file, { force: true });
    return new SessionJournal(file, { session: undefined, nodes: new Map(), handles: new Map(), requests: undefined }, 0);
  }

  /** The journal a dead process left in `dir`, replayed; undefined when there is none or it holds no session. */
  static resume(dir: string): SessionJournal | undefined {
    const file = path.join(dir, JOURNAL_FILE);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    const state = replay(text);
    if (!state.session) return undefined;
    const journal = new SessionJournal(file, state, 0);
    journal.compact();
    return journal;
  }

  /** The state the journal holds now (the replay's, then kept up to date). */
  get current(): Readonly<JournalState> {
    return this.state;
  }

  /** INIT agreed `session.protocol`, for the mount at `session.mountpoint`. */
  session(session: JournaledSession): void {
    this.append(['S', session]);
  }

  /** The kernel got a new node id. */
  node(id: number, kind: NodeKind, at: string): void {
    this.append(['N', id, kind, at]);
  }

  /** Nodes moved to new paths (a rename). */
  moved(moves: Array<[number, string]>): void {
    if (moves.length > 0) this.append(['M', moves]);
  }

  /** Nodes lost their paths (deleted or replaced), while the kernel may still hold them. */
  detached(ids: number[]): void {
    if (ids.length > 0) this.append(['X', ids]);
  }

  /** The kernel forgot these nodes. */
  forgotten(ids: number[]): void {
    if (ids.length > 0) this.append(['F', ids]);
  }

  /** The kernel got a new open handle. */
  opened(handle: number, entry: HandleRecord): void {
    this.append(['O', handle, entry]);
  }

  /** The kernel released a handle. */
  released(handle: number): void {
    this.append(['C', handle]);
  }

  /**
   * The requests in flight now (ids as decimal strings: JSON has no 64-bit integers). Written at once, not at the next
   * reply: this record comes from a timer, and the requests it names are the ones stuck unanswered.
   */
  requests(requests: RequestsInFlight): void {
    this.append(['R', requests.inFlight.map(String), String(requests.highest)]);
    this.flush();
  }

  /**
   * Before the kernel gets a reply: writes the records not written yet, in one write(2), unless they are only releases
   * and forgets, which no reply holds (they wait: see the file comment).
   */
  beforeReply(): void {
    if (this.replyWaits) this.flush();
  }

  /**
   * Writes the records appended since the last flush, with one write(2). Throws when the file cannot be written; the
   * records stay for the next flush.
   */
  flush(): void {
    if (this.abandoned || (this.pending === '' && this.unwritten.length === 0)) return;
    const text = Buffer.from(this.pending);
    const bytes = this.unwritten.length === 0 ? text : Buffer.concat([this.unwritten, text]);
    this.pending = '';
    let written = 0;
    try {
      // A regular file takes the whole write but when the disk is full: the rest then goes with the next flush.
      while (written < bytes.length) written += fs.writeSync(this.fd, bytes, written);
      this.replyWaits = false;
    } finally {
      this.unwritten = bytes.subarray(written);
    }
  }

  /** Writes what is left and closes the file (the journal stays for a successor). */
  close(): void {
    try {
      this.flush();
    } finally {
      this.closeFile();
    }
  }

  /**
   * Gives up keeping the session: drops what is not written and removes the file (a journal missing records would map
   * a successor's ids wrongly; none is better). Later records are ignored. For a state directory that cannot be
   * written: the mount serves on, and a crash of its serving process then ends it, as without takeover.
   */
  abandon(): void {
    if (this.abandoned) return;
    this.abandoned = true;
    this.remove();
  }

  /** Removes the journal: the session ended (unmounted), nobody will take it over. */
  remove(): void {
    this.pending = '';
    this.unwritten = NOTHING;
    this.closeFile();
    fs.rmSync(this.file, { force: true });
  }

  private closeFile(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // Already closed.
    }
  }

  private append(record: JournalRecord): void {
    if (this.abandoned) return;
    apply(this.state, record);
    this.pending += `${JSON.stringify(record)}\n`;
    if (record[0] !== 'C' && record[0] !== 'F') this.replyWaits = true;
    this.records++;
    const live = this.state.nodes.size + this.state.handles.size;
    if (this.records > COMPACT_AFTER_RECORDS && this.records > 2 * live) this.compact();
  }

  /** Rewrites the journal as the records of what is live now, atomically (temp file, rename). */
  private compact(): void {
    const lines: string[] = [];
    const { session, nodes, handles, requests } = this.state;
    if (session) lines.push(JSON.stringify(['S', session]));
    if (requests) lines.push(JSON.stringify(['R', requests.inFlight.map(String), String(requests.highest)]));
    for (const node of nodes.values()) {
      lines.push(JSON.stringify(['N', node.id, node.kind, node.path ?? '']));
      if (node.path === undefined) lines.push(JSON.stringify(['X', [node.id]]));
    }
    for (const [handle, entry] of handles) lines.push(JSON.stringify(['O', handle, entry]));
    const temporary = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, lines.length > 0 ? `${lines.join('\n')}\n` : '');
    fs.renameSync(temporary, this.file);
    // The new file holds what the records not yet written say (the state has them): they need no write of their own.
    this.pending = '';
    this.unwritten = NOTHING;
    this.replyWaits = false;
    this.closeFile();
    this.fd = fs.openSync(this.file, 'a');
    this.records = lines.length;
  }
}

/** The state `text` (a journal's lines) describes; a torn last line (a write cut short) is ignored. */
export function replay(text: string): JournalState {
  const state: JournalState = { session: undefined, nodes: new Map(), handles: new Map(), requests: undefined };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let record: JournalRecord;
    try {
      record = JSON.parse(line) as JournalRecord;
    } catch {
      continue;
    }
    apply(state, record);
  }
  return state;
}
