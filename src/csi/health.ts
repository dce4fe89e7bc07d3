// GET /healthz for the kubelet's liveness probe, served by the driver itself (what the livenessprobe sidecar does
// otherwise): 200 when the driver answers Probe on its own CSI endpoint and says it is ready, else 500 with the
// reason. The check goes through the socket, as the kubelet's calls do, so a server that stopped listening fails
// it. Whoever reaches the port gets nothing but that answer: no body is read, every connection serves one
// request, and the time to send headers, their size and the connections open at once are bounded.
import * as http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log/logger';
import { type EndpointLimits, HttpEndpoint } from './http-endpoint';
import { SingleFlight } from '../util/single-flight';
import type { ProbeResponse__Output } from './generated/csi/v1/ProbeResponse';
import { csiPackage } from './proto';

/** The one path served. */
export const HEALTH_PATH = '/healthz';

/** Bounds every client of the health port meets (a kubelet probe needs a fraction of each). */
const HEALTH_LIMITS: EndpointLimits = { headersTimeoutMs: 5000, requestTimeoutMs: 10_000, maxHeaderBytes: 8 * 1024, maxConnections: 32 };

/** The outcome of one check. */
export type HealthResult = { healthy: true } | { healthy: false; reason: string };

/** What a HealthServer checks and with what. */
export interface HealthServerOptions {
  /** The driver's gRPC address, as Driver.start() resolves it: unix:///path or host:port. */
  driverAddress: string;
  /** How long a check waits for the answer to Probe (ms). */
  probeTimeoutMs: number;
  logger: Logger;
}

/** The health endpoint: listen(), then close() at shutdown. */
export class HealthServer extends HttpEndpoint {
  private readonly checks = new SingleFlight<HealthResult>();
  /** The last check's outcome, so that only a change is logged (the kubelet probes every few seconds). */
  private lastHealthy: boolean | undefined;

  constructor(private readonly options: HealthServerOptions) {
    super(HEALTH_LIMITS, { logger: options.logger, path: HEALTH_PATH, message: 'health endpoint listening' });
  }

  /** Calls Probe on the driver's endpoint; concurrent checks share one call. */
  check(): Promise<HealthResult> {
    return this.checks.run('probe', () => this.probe());
  }

  protected handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    // One request per connection: no idle connections to bound, and a request body is never read.
    response.setHeader('Connection', 'close');
    const pathname = (request.url ?? '').split('?')[0];
    if (pathname !== HEALTH_PATH) {
      answer(response, request, 404, `this port serves only GET ${HEALTH_PATH}\n`);
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      answer(response, request, 405, `${HEALTH_PATH} answers GET and HEAD only\n`);
      return;
    }
    void this.check().then((result) => {
      this.record(result);
      if (result.healthy) answer(response, request, 200, 'ok\n');
      else answer(response, request, 500, `${result.reason}\n`);
    });
  }

  /** One Probe over a fresh connection: a kept one would carry the backoff of a past failure into the next check. */
  private async probe(): Promise<HealthResult> {
    const { driverAddress, probeTimeoutMs } = this.options;
    const identity = new (csiPackage().Identity)(driverAddress, grpc.credentials.createInsecure());
    try {
      const response = await new Promise<ProbeResponse__Output>((resolve, reject) => {
        identity.Probe({}, { deadline: Date.now() + probeTimeoutMs }, (error, result) => (error || !result ? reject(error ?? new Error('no answer')) : resolve(result)));
      });
      // The spec: a Probe answer without `ready` means ready.
      if (response.ready?.value === false) return { healthy: false, reason: `the CSI driver at ${driverAddress} answers Probe: not ready (a node plugin without /dev/fuse, for example)` };
      return { healthy: true };
    } catch (error) {
      return { healthy: false, reason: `the CSI driver at ${driverAddress} did not answer Probe (timeout ${probeTimeoutMs} ms): ${(error as Error).message}` };
    } finally {
      identity.close();
    }
  }

  private record(result: HealthResult): void {
    if (result.healthy === this.lastHealthy) return;
    const first = this.lastHealthy === undefined;
    this.lastHealthy = result.healthy;
    if (!result.healthy) this.options.logger.warn({ reason: result.reason }, 'health check failing: the kubelet restarts the container after its failureThreshold');
    else if (!first) this.options.logger.info('health check passing again');
  }
}

/** Writes a plain-text answer (no body for HEAD). */
function answer(response: http.ServerResponse, request: http.IncomingMessage, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  response.end(request.method === 'HEAD' ? undefined : text);
}
