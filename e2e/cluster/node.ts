import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { freePort } from '../support/s3-server';
import { createCgroups } from './cgroups';
import { cleanUpNode } from './cleanup';
import {
  type LocalPorts, type NodeDirs, apiServerArgs, cniConfig, containerdConfig, controllerManagerArgs, etcdArgs,
  kubeletArgs, kubeletConfig, nodeDirs, schedulerArgs,
} from './components';
import { type ClusterConfig, clusterToolPath, defaultClusterConfig, lockFile } from './config';
import { type Daemon, startDaemon, waitFor } from './daemon';
import { type CommandOutput, run } from './exec';
import { type BuiltImage, IMAGE_NAMES, buildImages, importImages } from './images/build';
import { acquireLock, releaseLock } from './lock';
import { makeSharedMount } from './mounts';
import { routeService, setUpNetwork } from './network';
import { createPki, kubeconfig } from './pki';
import { type EndpointSliceObject, type ServiceObject, type ServiceRoute, serviceRoutes } from './services';

/** How long each part of the boot may take on a busy 2-core machine (generous: a deadline is a failure). */
export const BOOT_TIMEOUTS_MS = { etcd: 60_000, apiServer: 120_000, containerd: 60_000, nodeReady: 180_000, serviceAccount: 120_000 };

/** How long routeService waits for a Service's endpoints by default (the EndpointSlice controller follows pods' readiness). */
export const SERVICE_ENDPOINTS_TIMEOUT_MS = 60_000;

/** Seconds each boot phase took, for the report. */
export type BootTimings = Record<string, number>;

/** A running one-node cluster: kubectl against it, where its parts are, and its teardown. */
export interface ClusterNode {
  readonly config: ClusterConfig;
  readonly dirs: NodeDirs;
  /** The admin kubeconfig (system:masters). */
  readonly kubeconfig: string;
  readonly images: typeof IMAGE_NAMES;
  readonly timings: BootTimings;
  /** Runs kubectl as the admin; rejects with its stderr on a non-zero exit. */
  kubectl(args: readonly string[], input?: string): Promise<CommandOutput>;
  /**
   * Lets pods reach a ClusterIP Service, in place of the kube-proxy this node does not run: its ports are routed to
   * the endpoints kube-proxy would pick for this node (services.ts), once they are ready (waiting up to timeoutMs).
   * The routes are fixed: a later change of the endpoints (a restarted pod) needs another call. Resolves with the
   * Service's ClusterIP.
   */
  routeService(namespace: string, name: string, timeoutMs?: number): Promise<string>;
  /** Deletes every pod (so the kubelet tears their sandboxes down), stops every daemon, removes all the harness made. */
  stop(): Promise<void>;
}

const elapsed = (since: number): number => Math.round((Date.now() - since) / 100) / 10;

/** Options of a boot. */
export interface BootOptions {
  readonly config?: ClusterConfig;
  /** The repository (for the image builds); default: two levels above this file's folder. */
  readonly projectRoot?: string;
  readonly log?: (line: string) => void;
}

/**
 * Boots the node from its parts, in order, each waited for: leftovers of an earlier run removed,
 * cgroups, the pod bridge and its iptables rules, a fresh PKI, etcd, the API server, the controller
 * manager and the scheduler, containerd with the images imported, then the kubelet on a shared root
 * dir; resolves once the Node is Ready and the default service account exists. On any failure it
 * tears down what it started before rejecting.
 */
export async function bootNode(options: BootOptions = {}): Promise<ClusterNode> {
  const config = options.config ?? defaultClusterConfig();
  // This file runs from e2e/cluster (ts-jest) or dist/e2e/cluster (built).
  const projectRoot = options.projectRoot ?? path.resolve(__dirname, '..', '..', ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []));
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const dirs = nodeDirs(config);
  const timings: BootTimings = {};
  const daemons: Daemon[] = [];
  const tool = (name: Parameters<typeof clusterToolPath>[1]): string => clusterToolPath(config, name);
  const adminKubeconfig = path.join(dirs.kubeconfigs, 'admin.json');
  const kubectl = (args: readonly string[], input?: string): Promise<CommandOutput> =>
    run(tool('kubectl'), [`--kubeconfig=${adminKubeconfig}`, ...args], { input, timeoutMs: 5 * 60_000 });

  let stopped = false;
  // An interrupted test (Ctrl-C, a CI timeout's SIGTERM) still tears the node down before exiting.
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`cluster: ${signal}: tearing the node down`);
    void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const started = Date.now();
    const apiServer = daemons.find((daemon) => daemon.name === 'kube-apiserver');
    const kubelet = daemons.find((daemon) => daemon.name === 'kubelet');
    if (apiServer && !apiServer.exited() && kubelet && !kubelet.exited()) {
      // The kubelet stops each pod's sandbox (CNI DEL, network namespace removed) before the pod goes.
      await kubectl(['delete', 'pods', '--all', '--all-namespaces', '--grace-period=1', '--wait=true', '--timeout=90s'])
        .catch((error: Error) => log(`cluster: deleting the pods failed (the cleanup removes them): ${error.message}`));
    }
    for (const name of ['kubelet', 'kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'containerd', 'etcd']) {
      await daemons.find((daemon) => daemon.name === name)?.stop();
    }
    await cleanUpNode(config);
    releaseLock(lockFile(config));
    timings.teardown = elapsed(started);
  };

  const bootStarted = Date.now();
  let phase = Date.now();
  const mark = (name: string): void => {
    timings[name] = elapsed(phase);
    log(`cluster: ${name} in ${timings[name]} s`);
    phase = Date.now();
  };
  acquireLock(lockFile(config));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await cleanUpNode(config);
    await fs.rm(dirs.logs, { recursive: true, force: true });
    for (const dir of Object.values(dirs)) if (!dir.endsWith('.json') && !dir.endsWith('.toml') && !dir.endsWith('.sock')) await fs.mkdir(dir, { recursive: true });
    await fs.mkdir(path.dirname(dirs.containerdSocket), { recursive: true });
    await createCgroups(config.cgroup);
    await setUpNetwork(config);
    mark('cleanup-and-network');

    const images = await buildImages({ config, projectRoot, log });
    mark('images-built');

    const pki = await createPki(dirs.pki, [
      { name: 'apiserver', commonName: 'kube-apiserver', altNames: [`IP:${config.nodeIp}`, `IP:${config.apiServiceIp}`,
        'DNS:kubernetes', 'DNS:kubernetes.default', 'DNS:kubernetes.default.svc', 'DNS:kubernetes.default.svc.cluster.local'] },
      { name: 'apiserver-kubelet-client', commonName: 'kube-apiserver-kubelet-client', organization: 'system:masters' },
      { name: 'admin', commonName: 'granary-admin', organization: 'system:masters' },
      { name: 'controller-manager', commonName: 'system:kube-controller-manager' },
      { name: 'scheduler', commonName: 'system:kube-scheduler' },
      { name: 'kubelet', commonName: `system:node:${config.nodeName}`, organization: 'system:nodes' },
    ]);
    const server = `https://${config.nodeIp}:${config.apiServerPort}`;
    for (const [name, user] of [['admin', 'granary-admin'], ['controller-manager', 'system:kube-controller-manager'],
      ['scheduler', 'system:kube-scheduler'], ['kubelet', `system:node:${config.nodeName}`]] as const) {
      await fs.writeFile(path.join(dirs.kubeconfigs, `${name}.json`), kubeconfig(server, pki.caCert, pki.cert(name), user), { mode: 0o600 });
    }
    mark('pki');

    const ports: LocalPorts = {
      etcdClient: await freePort(), etcdPeer: await freePort(), controllerManager: await freePort(),
      scheduler: await freePort(), kubeletHealthz: await freePort(),
    };
    const start = (name: string, command: string, args: readonly string[]): Daemon => {
      const daemon = startDaemon(config.cgroup, name, command, args, path.join(dirs.logs, `${name}.log`));
      daemons.push(daemon);
      return daemon;
    };
    const etcd = start('etcd', 'etcd', etcdArgs(dirs, ports));
    await waitFor('etcd to be healthy', async () => {
      const response = await fetch(`http://127.0.0.1:${ports.etcdClient}/health`);
      return response.ok && ((await response.json()) as { health?: string }).health === 'true';
    }, BOOT_TIMEOUTS_MS.etcd, [etcd]);
    mark('etcd');

    const apiServer = start('kube-apiserver', tool('kube-apiserver'), apiServerArgs(config, dirs, pki, ports));
    await waitFor('the API server to be ready', async () => (await kubectl(['get', '--raw', '/readyz'])).stdout.trim() === 'ok',
      BOOT_TIMEOUTS_MS.apiServer, [etcd, apiServer]);
    mark('kube-apiserver');
    const controllerManager = start('kube-controller-manager', tool('kube-controller-manager'), controllerManagerArgs(dirs, pki, ports));
    const scheduler = start('kube-scheduler', tool('kube-scheduler'), schedulerArgs(dirs, ports));

    await fs.writeFile(dirs.containerdConfig, containerdConfig(dirs, IMAGE_NAMES.pause));
    await fs.writeFile(path.join(dirs.cniConf, '10-granary-bed.conflist'), cniConfig(config, dirs));
    const containerd = start('containerd', 'containerd', ['--config', dirs.containerdConfig]);
    await waitFor('containerd to serve', () => run('ctr', ['--address', dirs.containerdSocket, 'version'], { timeoutMs: 10_000 }).then(() => true),
      BOOT_TIMEOUTS_MS.containerd, [containerd]);
    mark('containerd');
    await importImages('ctr', dirs.containerdSocket, images);
    mark('images-imported');

    await makeSharedMount(dirs.kubelet);
    await fs.writeFile(dirs.kubeletConfig, kubeletConfig(config, dirs, pki, ports));
    const kubelet = start('kubelet', tool('kubelet'), kubeletArgs(config, dirs));
    const all = [etcd, apiServer, controllerManager, scheduler, containerd, kubelet];
    await waitFor(`node ${config.nodeName} to be Ready`, async () => {
      const { stdout } = await kubectl(['get', 'node', config.nodeName, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
      return stdout.trim() === 'True';
    }, BOOT_TIMEOUTS_MS.nodeReady, all);
    mark('kubelet-node-ready');
    await waitFor('the default service account', () => kubectl(['get', 'serviceaccount', 'default', '-n', 'default']).then(() => true),
      BOOT_TIMEOUTS_MS.serviceAccount, all);
    mark('service-account');
    timings.boot = elapsed(bootStarted);
    log(`cluster: booted in ${timings.boot} s`);
    const routeServiceToPods = async (namespace: string, name: string, timeoutMs = SERVICE_ENDPOINTS_TIMEOUT_MS): Promise<string> => {
      let routes: ServiceRoute[] = [];
      await waitFor(`Service ${namespace}/${name} to have ready endpoints`, async () => {
        const service = JSON.parse((await kubectl(['get', 'service', name, '-n', namespace, '-o', 'json'])).stdout) as ServiceObject;
        const slices = JSON.parse((await kubectl(['get', 'endpointslices', '-n', namespace, '-l', `kubernetes.io/service-name=${name}`,
          '-o', 'json'])).stdout) as { items: EndpointSliceObject[] };
        routes = serviceRoutes(service, slices.items, config.nodeName);
        return true;
      }, timeoutMs, all);
      for (const route of routes) await routeService(config, route);
      return routes[0]!.clusterIp;
    };
    return { config, dirs, kubeconfig: adminKubeconfig, images: IMAGE_NAMES, timings, kubectl, routeService: routeServiceToPods, stop };
  } catch (error) {
    await stop().catch((cleanupError: Error) => log(`cluster: teardown after a failed boot failed: ${cleanupError.message}`));
    throw error;
  }
}

export type { BuiltImage };
