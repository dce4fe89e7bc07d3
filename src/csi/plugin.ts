import * as fs from 'node:fs';
import { cacheEnabled } from '../config/cache';
import type { CsiConfig } from '../config/csi';
import type { Logger } from '../log/logger';
import { createControllerService } from './controller';
import type { DriverServices } from './driver';
import { createIdentityService } from './identity';
import { InFlight } from './inflight';
import { LinuxMounter } from './mount/linux';
import { cacheFlags } from './mount/mount-arguments';
import { MountProcesses } from './mount/mount-process';
import { createNodeService } from './node';
import { s3StoreFactory } from './s3-store-factory';

/** Everything a `granary csi` process serves, built from its config (the composition root of the CSI driver). */
export function buildCsiServices(config: CsiConfig, logger: Logger): DriverServices {
  // One lock set for both services: in `all` mode a DeleteVolume must not run under a NodeStage of the same volume.
  const inflight = new InFlight();
  const serveController = config.mode !== 'node';
  const serveNode = config.mode !== 'controller';
  const services: DriverServices = {
    identity: createIdentityService({
      controller: serveController,
      // A node plugin without /dev/fuse cannot stage anything: say so through Probe.
      ready: async () => !serveNode || fs.existsSync('/dev/fuse'),
    }),
  };
  if (serveController) {
    services.controller = createControllerService({ openStore: s3StoreFactory(), inflight });
  }
  if (serveNode) {
    const mounter = new LinuxMounter();
    const mountProcesses = new MountProcesses({ mounter, stateDir: config.stateDir, readyTimeoutMs: config.mountReadyTimeoutMs });
    services.node = createNodeService({
      nodeId: config.nodeId ?? '',
      kubeletDir: config.kubeletDir,
      mounter,
      mountProcesses,
      inflight,
      maxVolumesPerNode: config.maxVolumesPerNode,
      cacheFlags: cacheFlags(config.cache),
    });
  }
  logger.debug({ mode: config.mode, cache: serveNode && cacheEnabled(config.cache) }, 'CSI services built');
  return services;
}
