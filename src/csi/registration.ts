// The kubelet's plugin registration, served by the driver itself (what the node-driver-registrar sidecar does
// otherwise). The kubelet watches its plugins_registry/ directory; when a socket appears there it calls GetInfo
// on it, then NodeGetInfo on the CSI endpoint the answer names, records the driver in the node's CSINode object,
// and reports the outcome with NotifyRegistrationStatus. Removing the socket unregisters the driver. A failed
// registration is retried by the kubelet (with backoff) as long as the socket is there, so a refusal is logged
// and the socket kept: exiting, as the sidecar does, would end every FUSE mount this process runs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DRIVER_NAME } from '../config/csi';
import type { Logger } from '../log/logger';
import type { InfoRequest__Output } from './generated/pluginregistration/InfoRequest';
import type { PluginInfo } from './generated/pluginregistration/PluginInfo';
import type { RegistrationHandlers } from './generated/pluginregistration/Registration';
import type { RegistrationStatus__Output } from './generated/pluginregistration/RegistrationStatus';
import type { RegistrationStatusResponse } from './generated/pluginregistration/RegistrationStatusResponse';
import { registrationPackage } from './proto';
import { shutDown } from './driver';

/** The plugin type the kubelet hands CSI drivers to (its CSI plugin handler). */
export const CSI_PLUGIN_TYPE = 'CSIPlugin';

/** CSI versions served at the endpoint, as node-driver-registrar advertises them: the kubelet speaks CSI 1.x. */
export const SUPPORTED_CSI_VERSIONS: readonly string[] = ['1.0.0'];

/** The registration socket's file name in the registration directory (node-driver-registrar's name for it). */
export const REGISTRATION_SOCKET_NAME = `${DRIVER_NAME}-reg.sock`;

/** What a KubeletRegistration needs. */
export interface KubeletRegistrationOptions {
  /** The directory the kubelet watches (--registration-dir); it must exist. */
  registrationDir: string;
  /** The CSI socket's path as the kubelet sees it (--kubelet-registration-path), told to the kubelet in GetInfo. */
  kubeletRegistrationPath: string;
  /** The CSI socket's path in this process's view, when the endpoint is a unix socket: checked against kubeletRegistrationPath. */
  endpointSocketPath?: string;
  logger: Logger;
}

/** The registration socket: start() after the CSI endpoint listens, stop() before it closes. */
export class KubeletRegistration {
  /** The registration socket's path. */
  readonly socketPath: string;
  private readonly server = new grpc.Server();
  private readonly logger: Logger;

  constructor(private readonly options: KubeletRegistrationOptions) {
    this.socketPath = path.join(options.registrationDir, REGISTRATION_SOCKET_NAME);
    this.logger = options.logger.child({ registrationSocket: this.socketPath });
    const handlers: RegistrationHandlers = {
      GetInfo: (call, callback) => {
        callback(null, this.info(call.request));
        return;
      },
      NotifyRegistrationStatus: (call, callback) => {
        this.notified(call.request);
        callback(null, {} satisfies RegistrationStatusResponse);
        return;
      },
    };
    this.server.addService(registrationPackage().Registration.service, handlers);
  }

  /**
   * Listens on the registration socket, which the kubelet then finds: refuses when the registration directory is
   * missing (the kubelet would never look elsewhere), and replaces a socket left by an earlier run.
   */
  async start(): Promise<void> {
    const { registrationDir } = this.options;
    if (!fs.statSync(registrationDir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new Error(
        `the kubelet's registration directory ${registrationDir} does not exist: give --registration-dir the directory the kubelet watches for plugins (<kubelet --root-dir>/plugins_registry, mounted into this container), or leave out --register-with-kubelet`,
      );
    }
    this.checkEndpointPath();
    fs.rmSync(this.socketPath, { force: true });
    await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`unix://${this.socketPath}`, grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)));
    });
    this.logger.info({ endpoint: this.options.kubeletRegistrationPath }, 'waiting for the kubelet to register the driver');
  }

  /** Removes the registration socket (the kubelet unregisters the driver) and stops answering, within `graceMs`. */
  async stop(graceMs = 2000): Promise<void> {
    fs.rmSync(this.socketPath, { force: true });
    await shutDown(this.server, graceMs);
  }

  private info(request: InfoRequest__Output): PluginInfo {
    this.logger.debug({ request }, 'the kubelet asked for the plugin info');
    return { type: CSI_PLUGIN_TYPE, name: DRIVER_NAME, endpoint: this.options.kubeletRegistrationPath, supported_versions: [...SUPPORTED_CSI_VERSIONS] };
  }

  private notified(status: RegistrationStatus__Output): void {
    if (status.plugin_registered) {
      this.logger.info({ endpoint: this.options.kubeletRegistrationPath }, 'registered with the kubelet');
      return;
    }
    this.logger.error(
      { endpoint: this.options.kubeletRegistrationPath, kubeletError: status.error },
      `the kubelet did not register the driver: ${status.error || '(no reason given)'}; check that --kubelet-registration-path (${this.options.kubeletRegistrationPath}) is the CSI socket's path on the host, that this driver answers there (the kubelet calls NodeGetInfo on it), and the kubelet's log; the kubelet retries while the registration socket exists`,
    );
  }

  /**
   * Warns when the path told to the kubelet is visible here and is not this driver's socket: the chart mounts the
   * kubelet directory at the same path, so a wrong --kubelet-registration-path shows at start, not at registration.
   */
  private checkEndpointPath(): void {
    const { endpointSocketPath, kubeletRegistrationPath } = this.options;
    if (!endpointSocketPath) return;
    const advertised = fs.statSync(kubeletRegistrationPath, { throwIfNoEntry: false });
    if (!advertised) return; // Not visible from here (another mount namespace): nothing to compare.
    const served = fs.statSync(endpointSocketPath, { throwIfNoEntry: false });
    if (!served || (advertised.dev === served.dev && advertised.ino === served.ino)) return;
    this.logger.warn(
      { endpoint: endpointSocketPath, kubeletRegistrationPath },
      `--kubelet-registration-path ${kubeletRegistrationPath} is not the socket this driver listens on (${endpointSocketPath}): the kubelet will call whatever answers there; give the endpoint's path as the host sees it`,
    );
  }
}
