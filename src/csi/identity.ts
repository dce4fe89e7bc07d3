import type { GetPluginCapabilitiesResponse } from './generated/csi/v1/GetPluginCapabilitiesResponse';
import type { GetPluginInfoResponse } from './generated/csi/v1/GetPluginInfoResponse';
import type { ProbeResponse } from './generated/csi/v1/ProbeResponse';
import type { Rpc } from './rpc';
import { DRIVER_NAME } from '../config/csi';
import { version } from '../version';

export { DRIVER_NAME };

/** The CSI Identity service. */
export interface IdentityService {
  GetPluginInfo: Rpc<unknown, GetPluginInfoResponse>;
  GetPluginCapabilities: Rpc<unknown, GetPluginCapabilitiesResponse>;
  Probe: Rpc<unknown, ProbeResponse>;
}

/** What the identity service needs to know of the plugin it describes. */
export interface IdentityOptions {
  /** True when this process also serves the Controller service. */
  controller: boolean;
  /** Answers whether the plugin can serve now (e.g. /dev/fuse present); defaults to always ready. */
  ready?: () => Promise<boolean>;
}

/** Builds the Identity service. */
export function createIdentityService(options: IdentityOptions): IdentityService {
  return {
    GetPluginInfo: async () => ({ name: DRIVER_NAME, vendor_version: version }),
    GetPluginCapabilities: async () => ({
      capabilities: options.controller ? [{ service: { type: 'CONTROLLER_SERVICE' } }] : [],
    }),
    Probe: async () => ({ ready: { value: options.ready ? await options.ready() : true } }),
  };
}
