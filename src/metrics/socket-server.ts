// A registry served as Prometheus text on a unix socket (GET /metrics), for a process whose metrics another
// process on the same host collects: a mount's, read by the CSI node plugin that started it. Connecting to a
// unix socket takes write permission on it, so one of mode 0600 admits its owner alone: a mount opens no port.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { Registry } from 'prom-client';

/** The one path served. */
export const METRICS_PATH = '/metrics';

/**
 * The longest socket path the kernel takes: sun_path holds 108 bytes, the last one a NUL. A longer one fails
 * at listen with EINVAL, which says nothing of the reason, so it is refused before.
 */
export const MAX_SOCKET_PATH_BYTES = 107;

/** A registry being served; close() stops serving and removes the socket. */
export interface MetricsSocket {
  readonly socketPath: string;
  close(): Promise<void>;
}

/**
 * Serves `registry` on a unix socket at `socketPath` (its folder made 0700 if missing, the socket 0600; a socket
 * left there by a dead process is replaced). Answers GET /metrics only; every connection serves one request.
 */
export async function serveMetricsSocket(registry: Registry, socketPath: string): Promise<MetricsSocket> {
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(`the metrics socket path ${socketPath} is longer than ${MAX_SOCKET_PATH_BYTES} bytes, the most a unix socket path may be: choose a shorter state directory`);
  }
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  fs.rmSync(socketPath, { force: true });
  const server = http.createServer({ headersTimeout: 5000, requestTimeout: 10_000 }, (request, response) => {
    response.setHeader('Connection', 'close');
    if ((request.url ?? '').split('?')[0] !== METRICS_PATH || request.method !== 'GET') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`this socket serves only GET ${METRICS_PATH}\n`);
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: Error) => response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${error.message}\n`),
    );
  });
  // The socket gets the umask's mode at bind: a restrictive umask for that moment, so it is never open to others.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(umask);
  }
  return {
    socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        fs.rmSync(socketPath, { force: true });
      }),
  };
}
