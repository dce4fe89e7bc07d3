// An HTTP/1.1 server that holds every client to bounds before any handler runs: connections per source address
// and in all (refused at accept), time to send the headers, their size, time idle between requests. The cache
// server's block protocol and the S3 gateway each answer behind one, in their own error format.
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Counter } from 'prom-client';
import type { Logger } from '../log/logger';
import { ConnectionGate } from './connection-gate';
import type { RefusalCap } from './metrics';

/** The bounds a BoundedHttpServer holds every client to (CacheServerConfig documents each and its default). */
export interface ServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxHeaderBytes: number;
}

/** Why Node could not take a request: the status, a code and a message saying which bound it hit. */
export interface ClientFault {
  status: number;
  code: string;
  message: string;
}

/** An answer in the server's own format (JSON for the block protocol, XML for S3). */
export interface FaultBody {
  contentType: string;
  body: string;
}

/** What a BoundedHttpServer serves with. */
export interface BoundedHttpOptions {
  limits: ServerLimits;
  handle: (request: http.IncomingMessage, response: http.ServerResponse) => void;
  /** The body for a request Node could not parse (it is answered, then the connection closed). */
  faultBody: (fault: ClientFault) => FaultBody;
  /** Where a connection refused at accept is counted (by the cap it went over) and logged, at most once a minute. */
  refusals: { counter: Counter<'cap'>; metricName: string; logger: Logger };
  /** Hears each request Node could not parse, once answered. */
  onFault?: (fault: ClientFault) => void;
  /** Serve HTTPS with this certificate chain and key (PEM) instead of plain HTTP. */
  tls?: TlsIdentity;
}

/** A server's certificate chain and private key, PEM. */
export interface TlsIdentity {
  cert: Buffer;
  key: Buffer;
}

/** The longest a header timeout may be overdue: Node checks the connections for it on an interval, this one at most. */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1000;

/**
 * Connections the kernel may queue for accept() (clamped to net.core.somaxconn, 4096 by default since Linux 5.4).
 * Node's default, 511, overflows when many clients dial at once (a node's mounts after a restart, or a flood):
 * the kernel then drops the handshake's last ACK and the client, which believes itself connected, waits out
 * SYN-ACK retransmits (1, 2, 4, 8 s...) before the server ever sees it.
 */
const LISTEN_BACKLOG = 4096;

/** A refused connection is logged at most this often (a flood would otherwise flood the log). */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/** Whether the request announced a body (a length above zero, or chunks) that has not been read to its end. */
export function hasUnreadBody(request: http.IncomingMessage): boolean {
  return (request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0) && !request.complete;
}

/** An http.Server behind the connection caps and timeouts: listen(), then close() at shutdown. */
export class BoundedHttpServer {
  private readonly server: http.Server | https.Server;
  private readonly gate: ConnectionGate;
  private lastRefusalLog = 0;

  constructor(private readonly options: BoundedHttpOptions) {
    const { limits } = options;
    this.gate = new ConnectionGate(limits.maxConnectionsPerAddress);
    const bounds: http.ServerOptions = {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.idleTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      connectionsCheckingInterval: Math.max(50, Math.min(MAX_TIMEOUT_CHECK_INTERVAL_MS, Math.floor(limits.headersTimeoutMs / 4))),
    };
    // Over TLS the handshake is held to the headers' bound too: a client that never finishes it holds a connection.
    this.server = options.tls
      ? https.createServer({ ...bounds, cert: options.tls.cert, key: options.tls.key, handshakeTimeout: limits.headersTimeoutMs }, options.handle)
      : http.createServer(bounds, options.handle);
    // The total: Node closes the excess right after accept(), before any socket object exists.
    this.server.maxConnections = limits.maxConnections;
    this.server.on('drop', (peer?: { remoteAddress?: string }) => this.refused('total', peer?.remoteAddress, limits.maxConnections));
    // Per address: the gate stands in front of http.Server's own 'connection' listener (which attaches the HTTP
    // parser), so that a refused socket is destroyed before it has a parser, listeners or a byte read. Under a
    // flood of refused connections that is most of the garbage (and so of the memory) a refusal would cost.
    const parse = this.server.listeners('connection') as Array<(socket: Socket) => void>;
    this.server.removeAllListeners('connection');
    this.server.on('connection', (socket: Socket) => {
      if (!this.gate.admit(socket)) {
        this.refused('address', socket.remoteAddress, limits.maxConnectionsPerAddress);
        return;
      }
      for (const listener of parse) listener.call(this.server, socket);
    });
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => this.answerClientError(error, socket));
  }

  /** Serves new TLS connections with another certificate and key (a rotated Secret); throws when they do not load. */
  setIdentity(identity: TlsIdentity): void {
    if (!(this.server instanceof https.Server)) throw new Error('this server speaks plain HTTP: it has no certificate to replace');
    this.server.setSecureContext({ cert: identity.cert, key: identity.key });
  }

  /** Connections open now. */
  get openConnections(): number {
    return this.gate.open;
  }

  /** Starts listening on host:port (port 0 picks one); resolves with the bound address. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting, closes idle connections, and resolves once every open connection has closed. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  /** Counts a connection refused at accept and logs it, at most once a minute. */
  private refused(cap: RefusalCap, address: string | undefined, limit: number): void {
    const { counter, metricName, logger } = this.options.refusals;
    counter.inc({ cap });
    const now = Date.now();
    if (now - this.lastRefusalLog < REFUSAL_LOG_INTERVAL_MS) return;
    this.lastRefusalLog = now;
    const flag = cap === 'address' ? '--max-connections-per-address' : '--max-connections';
    logger.warn({ address, cap, limit }, `refused a connection over the cap of ${limit} (${flag}); further refusals are counted in ${metricName} and logged at most once a minute`);
  }

  /**
   * Answers what Node could not parse as a request (headers too large, too slow, malformed) with a status and a
   * body saying which bound it hit, then closes the connection; a reset needs no answer.
   */
  private answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    const { limits } = this.options;
    const inFlight = (socket as Duplex & { _httpMessage?: http.ServerResponse })._httpMessage;
    if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const fault: ClientFault =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? { status: 431, code: 'HeadersTooLarge', message: `the request line and headers are larger than ${limits.maxHeaderBytes} bytes` }
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? { status: 408, code: 'RequestTimeout', message: `the request did not arrive in time: headers within ${limits.headersTimeoutMs} ms, the whole request within ${limits.requestTimeoutMs} ms` }
          : { status: 400, code: 'BadRequest', message: `the request is not valid HTTP/1.1 (${error.code ?? 'parse error'})` };
    this.options.onFault?.(fault);
    const { contentType, body } = this.options.faultBody(fault);
    socket.write(`HTTP/1.1 ${fault.status} ${http.STATUS_CODES[fault.status]}\r\nconnection: close\r\ncontent-type: ${contentType}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    socket.destroy();
  }
}
