// Test helpers for object stores: a scripted HTTP server standing in for S3, to drive S3Store's retries and
// failures from unit tests (of the store and of what sits on it) without a real server.
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';

/** S3's throttling answer, the default body of a scripted error status. */
export const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

/**
 * What one scripted answer does: a status with an XML error, a body, headers and then silence, a 5-byte body cut
 * after 2 bytes, or an answer that is not HTTP.
 */
export type Answer = { status: number; body?: string } | 'stall-headers' | 'stall-body' | 'cut-body' | 'not-http';

/** A running scripted server: its endpoint, the requests it got, and close(). */
export interface ScriptedServer {
  endpoint: string;
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }>;
  close(): Promise<void>;
}

/**
 * A scripted HTTP server standing in for S3: answers each request with the next scripted answer (then 200 "hello");
 * with `tls` (a PEM certificate and its key), an https one.
 */
export async function scriptedServer(answers: Answer[], tls?: { cert: string; key: string }): Promise<ScriptedServer> {
  const requests: ScriptedServer['requests'] = [];
  const respond = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const answer = answers.shift() ?? { status: 200, body: 'hello' };
    req.resume();
    if (answer === 'stall-headers') return;
    if (answer === 'cut-body') {
      res.writeHead(200, { 'content-length': '5', etag: '"e1"' });
      res.write('he', () => res.socket?.destroy());
      return;
    }
    if (answer === 'not-http') {
      res.socket?.end('SSH-2.0-OpenSSH\r\n\r\n');
      return;
    }
    if (answer === 'stall-body') {
      res.writeHead(200, { 'content-length': '100', etag: '"e1"' });
      res.write('partial');
      return;
    }
    const body = answer.body ?? SLOW_DOWN;
    res.writeHead(answer.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), etag: '"e1"' });
    res.end(body);
  };
  const server = tls ? https.createServer(tls, respond) : http.createServer(respond);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
