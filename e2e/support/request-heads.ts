// The client-to-server half of an HTTP/1.1 connection, request by request: each request head goes through a
// function that may read or rewrite it, bodies pass through untouched. A relay's request filter (tcp-relay.ts).
import { Transform, type TransformCallback } from 'node:stream';

/** Longest request head looked at; a longer one (no S3 client sends one) turns the connection into a plain relay. */
export const MAX_HEAD_BYTES = 64 * 1024;

const HEAD_END = Buffer.from('\r\n\r\n');

/** How many body bytes follow a request head: its Content-Length, 0 without one, or 'unknown' (chunked, or unreadable). */
export function bodyLength(head: Buffer): number | 'unknown' {
  const text = head.toString('latin1');
  if (/^transfer-encoding:/im.test(text)) return 'unknown';
  const match = /^content-length:[ \t]*(\d+)[ \t]*$/im.exec(text);
  return match ? Number(match[1]) : 0;
}

/** Passes each request head (request line to the blank line, included) through `edit`, bodies by their Content-Length. */
export class RequestHeads extends Transform {
  private head = Buffer.alloc(0);
  private bodyLeft = 0;
  /** Once a request's framing cannot be followed (chunked), the rest of the connection passes through as is. */
  private relayOnly = false;

  constructor(private readonly edit: (head: Buffer) => Buffer) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let rest = chunk;
    while (rest.length > 0) {
      if (this.relayOnly) {
        this.push(rest);
        break;
      }
      if (this.bodyLeft > 0) {
        const body = rest.subarray(0, this.bodyLeft);
        this.bodyLeft -= body.length;
        this.push(body);
        rest = rest.subarray(body.length);
        continue;
      }
      const buffered = Buffer.concat([this.head, rest]);
      const end = buffered.indexOf(HEAD_END);
      if (end < 0) {
        this.head = buffered;
        if (this.head.length > MAX_HEAD_BYTES) this.passThrough();
        break;
      }
      const head = buffered.subarray(0, end + HEAD_END.length);
      rest = buffered.subarray(end + HEAD_END.length);
      this.head = Buffer.alloc(0);
      this.push(this.edit(head));
      const length = bodyLength(head);
      if (length === 'unknown') this.relayOnly = true;
      else this.bodyLeft = length;
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.head.length > 0) this.push(this.head);
    done();
  }

  private passThrough(): void {
    this.push(this.head);
    this.head = Buffer.alloc(0);
    this.relayOnly = true;
  }
}
