// A TCP relay that counts the bytes flowing through it: put in front of the S3 server, it measures what
// granary read from the object store from outside granary.
import * as net from 'node:net';
import type { Transform } from 'node:stream';
import * as tls from 'node:tls';

/** A running relay. */
export interface CountingRelay {
  /** http://HOST:PORT (https:// over TLS), the listen address, to use as AWS_ENDPOINT_URL. */
  readonly endpoint: string;
  /** Bytes sent by the server to clients (responses: the bytes read from the store, headers included). */
  readonly downstreamBytes: number;
  /** Bytes sent by clients to the server. */
  readonly upstreamBytes: number;
  close(): Promise<void>;
}

/** Where a relay listens: default 127.0.0.1 on a free port. */
export interface RelayListen {
  readonly host?: string;
  readonly port?: number;
}

/**
 * TLS on both legs of a relay to an https target: clients get `cert` (with its `key`), and the target's certificate
 * must chain to `ca`. The relay sees the plain bytes in between, as a filter needs.
 */
export interface RelayTls {
  cert: string;
  key: string;
  ca: string;
}

/**
 * Starts a relay to `target` (host:port), listening on `listen` (default 127.0.0.1, a free port); `requestFilter`
 * makes a stream each client's bytes go through on their way to the target (counted before it); `secure` puts TLS
 * on both legs.
 */
export async function startCountingRelay(target: { host: string; port: number }, listen: RelayListen = {}, requestFilter?: () => Transform, secure?: RelayTls): Promise<CountingRelay> {
  const host = listen.host ?? '127.0.0.1';
  let downstream = 0;
  let upstream = 0;
  const sockets = new Set<net.Socket>();
  const relay = (client: net.Socket) => {
    const origin = secure
      ? tls.connect({ host: target.host, port: target.port, ca: secure.ca, ...(net.isIP(target.host) === 0 && { servername: target.host }) })
      : net.connect(target.port, target.host);
    sockets.add(client).add(origin);
    client.on('data', (chunk: Buffer) => (upstream += chunk.length));
    origin.on('data', (chunk: Buffer) => (downstream += chunk.length));
    if (requestFilter) {
      // A filtered head is written on its own, often behind a body's tail: it must not wait for an ACK (Nagle).
      origin.setNoDelay(true);
      client.pipe(requestFilter()).pipe(origin);
    } else client.pipe(origin);
    origin.pipe(client);
    const close = () => {
      client.destroy();
      origin.destroy();
      sockets.delete(client);
      sockets.delete(origin);
    };
    client.on('error', close).on('close', close);
    origin.on('error', close).on('close', close);
  };
  const server = secure ? tls.createServer({ cert: secure.cert, key: secure.key }, relay) : net.createServer(relay);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(listen.port ?? 0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    endpoint: `${secure ? 'https' : 'http'}://${host}:${port}`,
    get downstreamBytes() {
      return downstream;
    },
    get upstreamBytes() {
      return upstream;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
