// The small HTTP servers of `granary csi` (/healthz, /metrics): whoever reaches their port meets the same bounds,
// so a slow or greedy client cannot hold the driver's resources.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log/logger';

/** Bounds every client of an endpoint meets. */
export interface EndpointLimits {
  /** Time to send the request line and headers. */
  readonly headersTimeoutMs: number;
  /** Time for the whole request: at least headersTimeoutMs. */
  readonly requestTimeoutMs: number;
  /** Bytes of request line and headers. */
  readonly maxHeaderBytes: number;
  /** Connections open at once; the excess is closed at accept. */
  readonly maxConnections: number;
}

/** What an endpoint says in the log once it listens. */
export interface EndpointAnnouncement {
  readonly logger: Logger;
  /** The path it serves. */
  readonly path: string;
  readonly message: string;
}

/** An HTTP server under `limits` that answers with handle(): listen(), then close() at shutdown. */
export abstract class HttpEndpoint {
  private readonly server: http.Server;

  constructor(limits: EndpointLimits, private readonly announcement: EndpointAnnouncement) {
    this.server = http.createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        maxHeaderSize: limits.maxHeaderBytes,
        connectionsCheckingInterval: 1000,
      },
      (request, response) => this.handle(request, response),
    );
    this.server.maxConnections = limits.maxConnections;
  }

  /** Answers one request. */
  protected abstract handle(request: http.IncomingMessage, response: http.ServerResponse): void;

  /** Starts listening on host:port (port 0 picks one); resolves with the bound address. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address() as AddressInfo;
        const { logger, path, message } = this.announcement;
        logger.info({ listen: `${address.address}:${address.port}`, path }, message);
        resolve(address);
      });
    });
  }

  /** Stops listening and closes open connections. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
