// The errors of raw HTTP/1.1 exchanges (src/net/raw-http.ts): one class with a stable, machine-readable code that
// callers switch on (to retry, fall back or give up), never on message text; the socket's own error, when there
// was one, is the cause.

/** Why a raw exchange failed. */
export type ConnectionErrorCode =
  /** The connection (TCP, then for https the TLS handshake) did not open within the connect timeout (or, without one, the headers timeout). */
  | 'ConnectTimeout'
  /** The peer refused the connection (ECONNREFUSED): nothing listens on that port. */
  | 'ConnectionRefused'
  /** The connection could not be opened for another reason: the name did not resolve, the host or network is unreachable. */
  | 'ConnectFailed'
  /**
   * TLS refused the https peer: its certificate (not trusted, expired, for another host), or the handshake itself
   * (not TLS on that port, no common protocol version or cipher). Final: another try meets the same certificate.
   */
  | 'TlsRefused'
  /** The connection opened, then broke (closed, reset, any socket error) before the response head was whole. */
  | 'ConnectionReset'
  /** The connection opened but no complete response head came within the headers timeout. */
  | 'HeadersTimeout'
  /** The body stopped: no byte of it came for the body timeout. */
  | 'BodyTimeout'
  /** The connection closed or broke after the head and before Content-Length bytes of body had come. */
  | 'ShortBody'
  /** The response head is not HTTP/1.x, cannot be parsed, or is larger than the head limit (16 KiB). */
  | 'BadHead'
  /** The body is not the one asked for: a 2xx Content-Length other than the buffer's size, or bytes past the length announced. */
  | 'BadBody';

/** Codes after which the same request may succeed on another try: nothing usable answered, or the answer broke off. */
const TRANSIENT: ReadonlySet<string> = new Set<ConnectionErrorCode>([
  'ConnectTimeout', 'ConnectionRefused', 'ConnectFailed', 'ConnectionReset', 'HeadersTimeout', 'BodyTimeout', 'ShortBody',
]);

/**
 * Whether a failure with this code may pass on another try (a timeout, a refused or broken connection), unlike an
 * answer that is not HTTP or not the body asked for (BadHead, BadBody), or a peer TLS refused (TlsRefused). Takes any string, as error names are.
 */
export function isTransientConnectionFailure(code: string): boolean {
  return TRANSIENT.has(code);
}

/** A failed raw exchange: its code, and whether the connection had served a response before (a stale keep-alive may explain it). */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError';

  constructor(
    readonly code: ConnectionErrorCode,
    message: string,
    /** Whether the connection had carried a whole response before this exchange. */
    readonly reused: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when `error` is a ConnectionError with one of the given codes (any code when none is given). */
export function isConnectionError(error: unknown, ...codes: ConnectionErrorCode[]): error is ConnectionError {
  return error instanceof ConnectionError && (codes.length === 0 || codes.includes(error.code));
}
