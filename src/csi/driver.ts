import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log/logger';
import { csiPackage } from './proto';
import type { ControllerService } from './controller';
import type { IdentityService } from './identity';
import type { NodeService } from './node';
import { unaryHandler, type Rpc } from './rpc';

/** The services one driver process serves (by mode: controller, node or all); a method left out answers UNIMPLEMENTED. */
export interface DriverServices {
  identity: IdentityService;
  controller?: Partial<ControllerService>;
  node?: Partial<NodeService>;
  /** Work to finish before the CSI endpoint answers anyone: the node service adopting the mounts an earlier plugin left. */
  beforeServing?: () => Promise<void>;
}

/** Turns a service object into gRPC handlers, each wrapped for logging and error mapping. */
function handlers(service: object, logger: Logger): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, rpc] of Object.entries(service as Record<string, Rpc<unknown, unknown>>)) {
    out[method] = unaryHandler(method, rpc, logger);
  }
  return out;
}

/** Where a CSI endpoint listens: `unix:///path` (what kubelet and sidecars use) or `tcp://host:port` for tests. */
export function parseEndpoint(endpoint: string): { address: string; socketPath?: string } {
  if (endpoint.startsWith('unix://')) {
    const socketPath = endpoint.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new Error(`--endpoint ${endpoint}: a unix endpoint needs an absolute path, e.g. unix:///csi/csi.sock`);
    return { address: `unix://${socketPath}`, socketPath };
  }
  const tcp = /^tcp:\/\/([^/]+:\d+)$/.exec(endpoint);
  if (tcp?.[1]) return { address: tcp[1] };
  throw new Error(`--endpoint ${endpoint}: use unix:///path/to/csi.sock or tcp://host:port`);
}

/** A CSI gRPC server over a set of services. */
export class Driver {
  private readonly server = new grpc.Server();

  constructor(
    private readonly services: DriverServices,
    private readonly logger: Logger,
  ) {
    const csi = csiPackage();
    this.server.addService(csi.Identity.service, handlers(services.identity, logger));
    if (services.controller) this.server.addService(csi.Controller.service, handlers(services.controller, logger));
    if (services.node) this.server.addService(csi.Node.service, handlers(services.node, logger));
  }

  /**
   * Listens on the endpoint; resolves to the bound address. A unix socket's directory must exist; a socket file left by
   * a previous run (the kubelet restarts plugins) is replaced, but one another process still serves is refused.
   */
  async start(endpoint: string): Promise<string> {
    const { address, socketPath } = parseEndpoint(endpoint);
    if (socketPath) {
      const dir = path.dirname(socketPath);
      // bind() would say only EACCES or ENOENT.
      if (!fs.existsSync(dir)) throw new Error(`--endpoint ${endpoint}: the directory ${dir} does not exist (create it, or mount the CSI socket volume there)`);
      if (fs.existsSync(socketPath)) {
        if (await socketAnswers(socketPath)) {
          throw new Error(`--endpoint ${endpoint}: another process is serving on ${socketPath} (a second granary csi?); stop it, or give this one another socket`);
        }
        fs.rmSync(socketPath, { force: true });
      }
    }
    const port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
    });
    const served = ['identity', this.services.controller && 'controller', this.services.node && 'node'].filter(Boolean);
    const listening = socketPath ? address : address.replace(/:\d+$/, `:${port}`);
    this.logger.info({ endpoint: listening, services: served }, 'CSI driver listening');
    return listening;
  }

  /** Stops accepting calls and waits up to `graceMs` for calls under way. */
  async stop(graceMs = 5000): Promise<void> {
    await shutDown(this.server, graceMs);
  }
}

/** How long a connection to an existing socket file may take before the file counts as stale (ms). */
const SOCKET_PROBE_MS = 1000;

/** Whether a process accepts connections on the unix socket at `socketPath` now (a stale file refuses them). */
function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    const done = (answers: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answers);
    };
    const timer = setTimeout(() => done(false), SOCKET_PROBE_MS);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Stops a gRPC server from accepting calls, waits up to `graceMs` for calls under way, then cuts the rest. */
export function shutDown(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
