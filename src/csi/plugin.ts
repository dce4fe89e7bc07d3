import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { cacheEnabled } from '../config/cache';
import type { CsiConfig } from '../config/csi';
import { splitHostPort } from '../config/listen-address';
import type { Logger } from '../log/logger';
import { createControllerService } from './controller';
import { Driver, parseEndpoint, type DriverServices } from './driver';
import { HealthServer } from './health';
import { NodeMetricsServer } from './node-metrics';
import { createIdentityService } from './identity';
import { InFlight } from './inflight';
import { LinuxMounter } from './mount/linux';
import { cacheFlags } from './mount/mount-arguments';
import { MountPods } from './mount/mount-pods';
import { MountProcesses } from './mount/mount-process';
import type { MountSupervisor } from './mount/supervisor';
import { kubernetesPodApi } from './mount/pod-api';
import { createNodeService } from './node';
import { KubeletRegistration } from './registration';
import { s3StoreFactory } from './s3-store-factory';

/** The services of a `granary csi` process, and the node's mounts (node and all modes) whose metrics it serves. */
export interface CsiServices extends DriverServices {
  mountProcesses?: MountSupervisor;
}

/** Everything a `granary csi` process serves, built from its config (the composition root of the CSI driver). */
export function buildCsiServices(config: CsiConfig, logger: Logger): CsiServices {
  // One lock set for both services: in `all` mode a DeleteVolume must not run under a NodeStage of the same volume.
  const inflight = new InFlight();
  const serveController = config.mode !== 'node';
  const serveNode = config.mode !== 'controller';
  const services: CsiServices = {
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
    const mountProcesses = buildMountSupervisor(config, mounter);
    services.mountProcesses = mountProcesses;
    services.beforeServing = () => mountProcesses.adopt(logger);
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

/** The node service's mount supervisor: child processes, or mount Pods on this node through the API server. */
function buildMountSupervisor(config: CsiConfig, mounter: LinuxMounter): MountSupervisor {
  const common = { mounter, stateDir: config.stateDir, readyTimeoutMs: config.mountReadyTimeoutMs };
  if (config.mounter === 'process') return new MountProcesses(common);
  return new MountPods({
    ...common,
    api: kubernetesPodApi(config.mountPodNamespace ?? ''),
    podDir: config.mountPodDir,
    template: {
      image: config.mountPodImage ?? '',
      nodeName: config.nodeId ?? '',
      serviceAccountName: config.mountPodServiceAccount,
      priorityClassName: config.mountPodPriorityClass,
      terminationGracePeriodSeconds: config.mountPodGracePeriodSeconds,
    },
  });
}

/** A running `granary csi`: stop() undoes what start did, in reverse. */
export interface RunningCsiPlugin {
  /** Where the health endpoint listens (its port when --health-listen asked for port 0), when it was asked for. */
  health?: AddressInfo;
  /** Where the metrics endpoint listens, when --metrics-listen asked for it. */
  metrics?: AddressInfo;
  stop(): Promise<void>;
}

/**
 * Starts a `granary csi` process's servers in order: (1) the CSI endpoint; (2) the health endpoint, when
 * --health-listen is given; (3) the metrics endpoint, when --metrics-listen is given; (4) the kubelet registration
 * socket, when --register-with-kubelet is on, last because the kubelet calls the CSI endpoint as soon as it sees it.
 * When a step fails, the ones before it are stopped.
 */
export async function startCsiPlugin(config: CsiConfig, services: CsiServices, logger: Logger): Promise<RunningCsiPlugin> {
  const driver = new Driver(services, logger);
  const stops: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    for (const step of stops.reverse()) await step();
  };
  const running: RunningCsiPlugin = { stop };
  try {
    await services.beforeServing?.();
    const driverAddress = await driver.start(config.endpoint);
    stops.push(() => driver.stop());
    if (config.healthListen) {
      const health = new HealthServer({ driverAddress, probeTimeoutMs: config.healthProbeTimeoutMs, logger });
      const { host, port } = splitHostPort(config.healthListen);
      running.health = await health.listen(host, port);
      stops.push(() => health.close());
    }
    if (config.metricsListen) {
      const { mountProcesses } = services;
      const metrics = new NodeMetricsServer({
        mounts: () => mountProcesses?.list() ?? [],
        logger,
      });
      const { host, port } = splitHostPort(config.metricsListen);
      running.metrics = await metrics.listen(host, port);
      stops.push(() => metrics.close());
    }
    if (config.registerWithKubelet) {
      const registration = new KubeletRegistration({
        registrationDir: config.registrationDir,
        kubeletRegistrationPath: config.kubeletRegistrationPath,
        endpointSocketPath: parseEndpoint(config.endpoint).socketPath,
        logger,
      });
      await registration.start();
      stops.push(() => registration.stop());
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return running;
}
