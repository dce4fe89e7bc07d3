// A TCP proxy in front of the S3 server for the sides whose client sends `Expect: 100-Continue` (see
// expect-header.ts): requests go through ExpectFix, responses (100 Continue included) straight back.
import { startCountingRelay, type CountingRelay } from '../e2e/support/tcp-relay';
import { ExpectFix } from './expect-header';

/** Starts the proxy to the server at `target` (an http:// endpoint) on a free port of 127.0.0.1; its `endpoint` is for the affected sides. */
export function startExpectProxy(target: string): Promise<CountingRelay> {
  const { hostname, port } = new URL(target);
  return startCountingRelay({ host: hostname, port: Number(port) }, {}, () => new ExpectFix());
}
