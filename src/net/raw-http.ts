// HTTP/1.1 GETs whose bodies are read straight into the caller's buffer. Node's HTTP client hands every
// response body over as freshly allocated 64 KiB chunks that are then copied into the block buffer: at
// several hundred MiB/s that allocation (and its garbage collection) and the copy were two thirds of a
// mount's CPU on reads. Here each keep-alive connection reads with `onread`: the response head into a
// small scratch buffer, the body directly into the destination, with no allocation and no copy. Used for
// block reads only (a mount's reads from cache servers, and ranged GETs of object stores); everything else uses
// node:http(s). An https peer is reached with tls.connect, which takes the same `onread`: OpenSSL decrypts each
// record straight into the buffer, so TLS costs the decryption and nothing more.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ConnectionError, isConnectionError } from './errors';
import { isTlsRefusal, tlsRefusalMessage } from './tls-refusal';

/** The parts of a response the caller needs. */
export interface RawResponse {
  status: number;
  /** Header names in lower case. */
  headers: Map<string, string>;
  /** The body: `into` itself (filled) on 2xx; at most ERROR_BODY_LIMIT bytes of it otherwise. */
  body: Buffer;
}

/** Largest response head accepted. */
const HEAD_LIMIT = 16 * 1024;

/** Bytes of a non-2xx body kept for the error message. */
const ERROR_BODY_LIMIT = 16 * 1024;

const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * How long before the idle timeout a server announces (Keep-Alive: timeout=N) a connection stops being reused,
 * so that a request is not sent just as the server closes it (Node's http.Agent keeps the same margin).
 */
export const KEEP_ALIVE_MARGIN_MS = 1000;

/** How a pool's connections open and time out, besides the headers timeout each request gives. */
export interface RawHttpPoolOptions {
  /** The longest a new connection may take to open, TLS handshake included (ms). Default: none of its own (the headers timeout covers connecting). */
  connectTimeoutMs?: number;
  /** The longest a response body may go without a byte arriving (ms). Default: none (the caller's cancel bounds it). */
  bodyTimeoutMs?: number;
  /**
   * The certificates an https peer's must chain to, in place of Node's default CAs (Mozilla's, plus those of
   * NODE_EXTRA_CA_CERTS, which this replaces too). Default: Node's, as node:https trusts.
   */
  ca?: string | Buffer | Array<string | Buffer>;
}

type Phase = 'idle' | 'head' | 'body' | 'error-body';

/** One in-progress exchange on a connection. */
interface Exchange {
  into: Buffer | undefined;
  resolve(response: RawResponse): void;
  reject(error: Error): void;
}

/** One keep-alive connection to a peer, reading into whatever buffer the current phase needs. */
class RawConnection {
  readonly socket: net.Socket;
  /** host:port, for messages. */
  private readonly peer: string;
  /** Whether this is an https connection (TLS over TCP). */
  private readonly secure: boolean;
  /** Whether a response has been read whole on this connection (a failure then may be a stale keep-alive). */
  private served = false;
  /** Whether the TCP connection has opened (an https one may still be in its TLS handshake). */
  private connected = false;
  /** Whether the connection can carry requests: TCP open, and for https the TLS handshake done with the certificate accepted. */
  private opened = false;
  /** Until when (Date.now()) the connection may carry another request: the server's announced idle timeout, or its "connection: close". */
  private reusableUntil = Infinity;
  private idleTimeoutMs: number | undefined;
  private phase: Phase = 'idle';
  private readonly scratch = Buffer.allocUnsafe(HEAD_LIMIT);
  private headFilled = 0;
  private body: Buffer = this.scratch;
  private bodyFilled = 0;
  private response: Omit<RawResponse, 'body'> | undefined;
  private exchange: Exchange | undefined;
  private headTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private bodyTimer: NodeJS.Timeout | undefined;

  /** Opens a connection to `origin` (http: or https:). */
  constructor(
    origin: URL,
    private readonly options: RawHttpPoolOptions,
    onIdleClose: (connection: RawConnection) => void,
  ) {
    this.peer = origin.host;
    this.secure = origin.protocol === 'https:';
    const { secure } = this;
    const host = origin.hostname.replace(/^\[|\]$/g, '');
    const port = Number(origin.port || (secure ? 443 : 80));
    const onread = {
      buffer: () => this.nextBuffer(),
      callback: (count: number) => {
        this.onRead(count);
        return true;
      },
    };
    if (secure) {
      const { ca } = options;
      // Node documents onread for tls.connect as for net.connect; @types/node leaves it out of ConnectionOptions.
      const tlsOptions: tls.ConnectionOptions & Pick<net.TcpNetConnectOpts, 'onread'> = {
        host,
        port,
        onread,
        // SNI names a host, never an address (RFC 6066); the certificate is checked against `host` either way.
        ...(net.isIP(host) === 0 && { servername: host }),
        ...(ca !== undefined && { ca }),
      };
      this.socket = tls.connect(tlsOptions);
    } else {
      this.socket = net.connect({ host, port, onread });
    }
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, 30_000);
    const { connectTimeoutMs } = options;
    if (connectTimeoutMs !== undefined) {
      this.connectTimer = setTimeout(() => this.destroy(this.error('ConnectTimeout', `the connection to ${this.peer} did not open within ${connectTimeoutMs} ms`)), connectTimeoutMs);
    }
    this.socket.once('connect', () => (this.connected = true));
    this.socket.once(secure ? 'secureConnect' : 'connect', () => {
      this.opened = true;
      clearTimeout(this.connectTimer);
    });
    this.socket.on('error', (error) => this.fail(this.broken(error)));
    this.socket.on('close', () => {
      this.fail(this.broken(undefined));
      onIdleClose(this);
    });
  }

  /**
   * Sends one request; resolves with the response once its body is read. Without a response head within
   * `headTimeoutMs` the connection is destroyed and the request fails (HeadersTimeout, or ConnectTimeout while
   * the connection has not opened).
   */
  send(request: string, into: Buffer | undefined, headTimeoutMs: number): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      this.exchange = { into, resolve, reject };
      this.phase = 'head';
      this.headFilled = 0;
      this.headTimer = setTimeout(() => {
        this.destroy(this.opened
          ? this.error('HeadersTimeout', `no answer within ${headTimeoutMs} ms`)
          : this.error('ConnectTimeout', `the connection to ${this.peer} did not open within ${headTimeoutMs} ms`));
      }, headTimeoutMs);
      // An https request waits for the handshake: written during it, a refusal would surface as the write's EPROTO, without TLS's reason.
      if (this.secure && !this.opened) this.socket.once('secureConnect', () => this.socket.write(request));
      else this.socket.write(request);
    });
  }

  /** Ends the connection, failing the exchange in progress with `error` (a timeout, a bad answer, the caller's cancel). */
  destroy(error: Error): void {
    this.fail(error);
    this.socket.destroy();
  }

  get idle(): boolean {
    return this.phase === 'idle' && !this.socket.destroyed;
  }

  /** Whether the connection is idle and the server has not announced it closes it by now. */
  get reusable(): boolean {
    return this.idle && Date.now() < this.reusableUntil;
  }

  private nextBuffer(): Buffer {
    if (this.phase === 'head') return this.scratch.subarray(this.headFilled);
    if (this.phase === 'body' || this.phase === 'error-body') return this.body.subarray(this.bodyFilled);
    // Idle: nothing is expected; a byte arriving now is a protocol error (read into scratch, then refused).
    return this.scratch;
  }

  private onRead(count: number): void {
    if (this.phase === 'head') {
      this.headFilled += count;
      this.parseHead();
    } else if (this.phase === 'body' || this.phase === 'error-body') {
      this.bodyFilled += count;
      if (this.bodyFilled >= this.body.length) this.finish();
      else this.bodyTimer?.refresh();
    } else {
      this.destroy(this.error('BadHead', 'the peer sent bytes while no request was outstanding'));
    }
  }

  private parseHead(): void {
    const end = this.scratch.subarray(0, this.headFilled).indexOf(HEAD_END);
    if (end < 0) {
      if (this.headFilled >= HEAD_LIMIT) this.destroy(this.error('BadHead', `the response head is larger than ${HEAD_LIMIT} bytes`));
      return;
    }
    clearTimeout(this.headTimer);
    const lines = this.scratch.toString('latin1', 0, end).split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!status) return this.destroy(this.error('BadHead', `the peer answered something that is not HTTP/1.1: ${JSON.stringify((lines[0] ?? '').slice(0, 40))}`));
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    this.response = { status: Number(status[1]), headers };
    this.noteKeepAlive(headers);
    const length = Number(headers.get('content-length'));
    if (!Number.isSafeInteger(length) || length < 0 || headers.get('transfer-encoding') !== undefined) {
      // Not a body this reader can take (chunked, or no length): give the status and drop the connection.
      this.finishWith(Buffer.alloc(0));
      this.socket.destroy();
      return;
    }
    const ok = this.response.status >= 200 && this.response.status < 300;
    const exchange = this.exchange as Exchange;
    if (ok && exchange.into && exchange.into.length !== length) {
      return this.destroy(this.error('BadBody', `the peer answered ${length} bytes for a ${exchange.into.length}-byte range`));
    }
    this.body = ok ? (exchange.into ?? Buffer.allocUnsafe(length)) : Buffer.allocUnsafe(Math.min(length, ERROR_BODY_LIMIT));
    // Bytes of the body that came with the head.
    const early = this.scratch.subarray(end + HEAD_END.length, this.headFilled);
    if (early.length > length) return this.destroy(this.error('BadBody', 'the peer sent more than the body it announced'));
    this.bodyFilled = early.copy(this.body, 0);
    this.phase = ok ? 'body' : 'error-body';
    if (!ok && length > ERROR_BODY_LIMIT) {
      // A long error body is not worth reading: keep its start, drop the connection.
      this.socket.destroy();
      this.finishWith(this.body.subarray(0, this.bodyFilled));
      return;
    }
    if (this.bodyFilled >= this.body.length) return this.finish();
    const { bodyTimeoutMs } = this.options;
    if (bodyTimeoutMs !== undefined) {
      // Refreshed by every read of the body: it fires only when no byte came for bodyTimeoutMs.
      this.bodyTimer = setTimeout(() => this.destroy(this.error('BodyTimeout', `no byte of the body came for ${bodyTimeoutMs} ms (${this.bodyFilled} of ${this.body.length} read)`)), bodyTimeoutMs);
    }
  }

  /** Remembers how long the server keeps this connection open once idle (none: as long as it stays open). */
  private noteKeepAlive(headers: Map<string, string>): void {
    if (/\bclose\b/i.test(headers.get('connection') ?? '')) {
      this.idleTimeoutMs = 0;
      return;
    }
    const hint = /\btimeout=(\d+)/i.exec(headers.get('keep-alive') ?? '')?.[1];
    this.idleTimeoutMs = hint === undefined ? undefined : Math.max(0, Number(hint) * 1000 - KEEP_ALIVE_MARGIN_MS);
  }

  private finish(): void {
    this.finishWith(this.bodyFilled === this.body.length ? this.body : this.body.subarray(0, this.bodyFilled));
  }

  private finishWith(body: Buffer): void {
    clearTimeout(this.bodyTimer);
    const exchange = this.exchange;
    const response = this.response;
    this.exchange = undefined;
    this.response = undefined;
    this.phase = 'idle';
    this.body = this.scratch;
    this.served = true;
    // The server's idle clock starts now, when it has sent the whole response.
    this.reusableUntil = this.idleTimeoutMs === undefined ? Infinity : Date.now() + this.idleTimeoutMs;
    if (exchange && response) exchange.resolve({ ...response, body });
  }

  /** The error of a socket that failed (`cause`) or closed (none), by how far the exchange had come. */
  private broken(cause: NodeJS.ErrnoException | undefined): ConnectionError {
    const why = cause?.message ?? 'the peer closed the connection';
    if (!this.opened) {
      if (this.connected && isTlsRefusal(cause)) return this.error('TlsRefused', tlsRefusalMessage(this.peer, cause as NodeJS.ErrnoException), cause);
      return cause?.code === 'ECONNREFUSED'
        ? this.error('ConnectionRefused', `${this.peer} refused the connection: ${why}`, cause)
        : this.error('ConnectFailed', `connecting to ${this.peer} failed: ${why}`, cause);
    }
    if (this.phase === 'body' || this.phase === 'error-body') {
      return this.error('ShortBody', `the body ended after ${this.bodyFilled} of ${this.body.length} bytes: ${why}`, cause);
    }
    return this.error('ConnectionReset', `${why} before the response head was whole`, cause);
  }

  private error(code: ConnectionError['code'], message: string, cause?: unknown): ConnectionError {
    return new ConnectionError(code, message, this.served, cause === undefined ? undefined : { cause });
  }

  private fail(error: Error): void {
    clearTimeout(this.headTimer);
    clearTimeout(this.connectTimer);
    clearTimeout(this.bodyTimer);
    const exchange = this.exchange;
    this.exchange = undefined;
    this.phase = 'idle';
    this.body = this.scratch;
    exchange?.reject(error);
  }
}

/**
 * Keep-alive connections to each host, for GETs whose bodies go straight into the caller's buffer. Failures are
 * ConnectionErrors (src/net/errors.ts), whose code says what went wrong, or the caller's cancel reason.
 */
export class RawHttpPool {
  private readonly idle = new Map<string, RawConnection[]>();
  private closed = false;

  /** `maxIdlePerPeer` connections are kept open between requests; `options` bound every connection's opening and bodies, and say whom an https peer's certificate must chain to. */
  constructor(
    private readonly maxIdlePerPeer: number,
    private readonly options: RawHttpPoolOptions = {},
  ) {}

  /**
   * Sends `GET path` to `peer` (http://host:port or https://host:port) with `headers`, and reads the response; a 2xx body of exactly
   * into.length bytes goes into `into`. An idle connection is reused until a second before the idle timeout
   * the server announced; one that had served before and breaks before the head (ConnectionReset: the server
   * closed it while idle) is retried once on a new connection; nothing else is retried. `cancel` aborts it:
   * pass a promise that rejects.
   */
  async get(peer: URL, path: string, headers: Record<string, string>, into: Buffer | undefined, headTimeoutMs: number, cancel: Promise<never>): Promise<RawResponse> {
    const request = `GET ${path} HTTP/1.1\r\nhost: ${peer.host}\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`;
    for (let attempt = 1; ; attempt++) {
      // The retry of a stale keep-alive opens a new connection: the other idle ones may be just as stale.
      const connection = attempt === 1 ? this.take(peer) : this.connect(peer);
      const sending = connection.send(request, into, headTimeoutMs);
      // A cancelled exchange still rejects later (its connection is destroyed): that rejection is expected.
      sending.catch(() => undefined);
      try {
        const response = await Promise.race([sending, cancel]);
        this.giveBack(peer, connection);
        return response;
      } catch (error) {
        connection.destroy(error instanceof Error ? error : new Error(String(error)));
        if (isConnectionError(error, 'ConnectionReset') && error.reused && attempt === 1) continue;
        throw error;
      }
    }
  }

  /** Closes every idle connection; later requests open new ones. */
  close(): void {
    this.closed = true;
    for (const connections of this.idle.values()) for (const connection of connections) connection.socket.destroy();
    this.idle.clear();
  }

  private take(peer: URL): RawConnection {
    const connections = this.idle.get(peer.origin) ?? [];
    for (let connection = connections.pop(); connection; connection = connections.pop()) {
      if (connection.reusable) return connection;
      connection.socket.destroy();
    }
    return this.connect(peer);
  }

  private connect(peer: URL): RawConnection {
    return new RawConnection(peer, this.options, (closed) => this.forget(peer.origin, closed));
  }

  private giveBack(peer: URL, connection: RawConnection): void {
    const connections = this.idle.get(peer.origin) ?? [];
    if (this.closed || !connection.reusable || connections.length >= this.maxIdlePerPeer) {
      connection.socket.destroy();
      return;
    }
    connections.push(connection);
    this.idle.set(peer.origin, connections);
  }

  private forget(origin: string, connection: RawConnection): void {
    const connections = this.idle.get(origin);
    const index = connections?.indexOf(connection) ?? -1;
    if (connections && index >= 0) connections.splice(index, 1);
  }
}
