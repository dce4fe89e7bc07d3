// Lower-cases the value of `Expect: 100-Continue` in the HTTP/1.1 requests of one client connection. The pinned
// versitygw (v1.8.0, fasthttp underneath) answers 100 Continue only to the exact bytes `100-continue`, though
// RFC 9110 makes the expectation case-insensitive; aws-sdk-go v1 clients (rclone, geesefs) send `100-Continue`
// and then wait out their 1 s continue timeout before every part body. Bodies pass through untouched.
import { RequestHeads } from '../e2e/support/request-heads';

export { bodyLength, MAX_HEAD_BYTES } from '../e2e/support/request-heads';

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

/** The client-to-server half of one connection: request heads fixed, bodies counted through by Content-Length. */
export class ExpectFix extends RequestHeads {
  constructor() {
    super(lowerCaseExpect);
  }
}
