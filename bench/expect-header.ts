// Lower-cases the value of `Expect: 100-Continue` in the HTTP/1.1 requests of one client connection. The pinned
// versitygw (v1.8.0, fasthttp underneath) answers 100 Continue only to the exact bytes `100-continue`, though
// RFC 9110 makes the expectation case-insensitive; aws-sdk-go v1 clients (rclone, geesefs) send `100-Continue`
// and then wait out their 1 s continue timeout before every part body. Bodies pass through untouched.
import { Transform, type TransformCallback } from 'node:stream';

/** Longest request head looked at; a longer one (no S3 client sends one) turns the connection into a plain relay. */
export const MAX_HEAD_BYTES = 64 * 1024;

const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * The head with every `Expect` header's value lower-cased (same length: nothing else moves); unchanged when the
 * client signed the header (SigV4 keeps the value's case, so the fix would fail the signature: the wait is better).
 */
export function lowerCaseExpect(head: Buffer): Buffer {
  const text = head.toString('latin1');
  if (/signedheaders=[^\s,&]*expect/i.test(text)) return head;
  const fixed = text.replace(/^(expect:[ \t]*)([^\r\n]*)/gim, (_, name: string, value: string) => `${name}${value.toLowerCase()}`);
  return fixed === text ? head : Buffer.from(fixed, 'latin1');
}

/** How many body bytes follow a request head: its Content-Length, 0 without one, or 'unknown' (chunked, or unreadable). */
export function bodyLength(head: Buffer): number | 'unknown' {
  const text = head.toString('latin1');
  if (/^transfer-encoding:/im.test(text)) return 'unknown';
  const match = /^content-length:[ \t]*(\d+)[ \t]*$/im.exec(text);
  return match ? Number(match[1]) : 0;
}

/** The client-to-server half of one connection: request heads fixed, bodies counted through by Content-Length. */
export class ExpectFix extends Transform {
  private head = Buffer.alloc(0);
  private bodyLeft = 0;
  /** Once a request's framing cannot be followed (chunked), the rest of the connection passes through as is. */
  private relayOnly = false;

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
      this.push(lowerCaseExpect(head));
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
