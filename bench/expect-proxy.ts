// A TCP proxy in front of the S3 server for the sides whose client sends `Expect: 100-Continue` (see
// expect-header.ts): requests go through ExpectFix, responses (100 Continue included) straight back. In front of
// an https server it speaks TLS on both legs: it must see the request heads in plain text to fix them, and the
// sides behind it must pay for TLS as the others do.
import { startCountingRelay, type CountingRelay } from '../e2e/support/tcp-relay';
import type { SelfSignedCertificate } from '../e2e/support/self-signed';
import { ExpectFix } from './expect-header';

/**
 * Starts the proxy to the server at `target` on a free port of 127.0.0.1; its `endpoint` is for the affected sides.
 * For an https target, `certificate` is the server's: the proxy presents it to its clients (it names 127.0.0.1,
 * and they trust it already) and verifies the server against it.
 */
export function startExpectProxy(target: string, certificate?: SelfSignedCertificate): Promise<CountingRelay> {
  const { hostname, port, protocol } = new URL(target);
  if (protocol === 'https:' && !certificate) throw new Error(`the Expect proxy needs the certificate of ${target}`);
  const secure = protocol === 'https:' && certificate ? { cert: certificate.cert, key: certificate.key, ca: certificate.cert } : undefined;
  return startCountingRelay({ host: hostname, port: Number(port) }, {}, () => new ExpectFix(), secure);
}
