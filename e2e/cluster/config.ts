import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import clusterVersions from './versions.json';

/**
 * Where the one-node cluster lives and the names it owns. Every process, mount, interface, iptables
 * chain and cgroup the harness makes is named from here, so a later run (or the cleanup after an
 * interrupted one) finds exactly its own leftovers and nothing else.
 */
export interface ClusterConfig {
  /** Everything the node writes: PKI, etcd data, containerd root and state, the kubelet's root dir, logs. */
  readonly baseDir: string;
  /** The node's name as the API server knows it. */
  readonly nodeName: string;
  /** The pod network's bridge (created by the harness; IFNAMSIZ allows 15 characters). */
  readonly bridge: string;
  /** The pod network; the bridge holds its first address, which is also the node's and the API server's. */
  readonly podCidr: string;
  /** The bridge's address: the node IP, where the API server and the kubelet listen. */
  readonly nodeIp: string;
  /** The Services' range; its first address is the `kubernetes` Service, DNAT-ed to the API server. */
  readonly serviceCidr: string;
  /** The `kubernetes` Service's ClusterIP. */
  readonly apiServiceIp: string;
  /** The API server's port on nodeIp. */
  readonly apiServerPort: number;
  /** The kubelet's port on nodeIp (logs, exec). */
  readonly kubeletPort: number;
  /** The prefix of the harness's iptables chains and the comment on every rule it adds. */
  readonly iptablesName: string;
  /** The cgroup (in every v1 hierarchy) holding the harness's daemons and, as the kubelet's cgroupRoot, every pod. */
  readonly cgroup: string;
  /** Where the pinned cluster tools are cached (e2e/cluster/install.sh). */
  readonly toolsDir: string;
  /** Where images and root filesystems are cached between runs. */
  readonly imageCacheDir: string;
}

/**
 * The defaults. 10.213.0.0/16 is used only on the harness's own bridge; nothing routes it off the
 * machine (ip_forward stays as it is, forwarding is switched on for the bridge alone when a Service is
 * routed to pods, and the drop rule refuses anything else from the pod network).
 * GRANARY_CLUSTER_DIR moves baseDir (default /var/tmp/granary-cluster).
 */
export function defaultClusterConfig(): ClusterConfig {
  const cacheRoot = path.join(os.homedir(), '.cache', 'granary');
  return {
    baseDir: process.env.GRANARY_CLUSTER_DIR ?? '/var/tmp/granary-cluster',
    nodeName: 'granary-node',
    bridge: 'granarybed0',
    podCidr: '10.213.0.0/24',
    nodeIp: '10.213.0.1',
    serviceCidr: '10.213.1.0/24',
    apiServiceIp: '10.213.1.1',
    apiServerPort: 6443,
    kubeletPort: 10250,
    iptablesName: 'GRANARY-BED',
    cgroup: 'granary-bed',
    toolsDir: process.env.GRANARY_TOOLS_DIR ?? path.join(cacheRoot, 'tools'),
    imageCacheDir: path.join(cacheRoot, 'cluster-images'),
  };
}

/** A tool of e2e/cluster/versions.json. */
export type ClusterToolName = keyof typeof clusterVersions;

/** The cached binary of a pinned cluster tool; throws with the fix when it is missing. */
export function clusterToolPath(config: ClusterConfig, name: ClusterToolName): string {
  const file = path.join(config.toolsDir, `${name}-${clusterVersions[name].version}`, name);
  if (!fs.existsSync(file)) {
    throw new Error(`cluster tool ${name} ${clusterVersions[name].version} is not installed at ${file}: run 'bash e2e/cluster/install.sh'`);
  }
  return file;
}

/** The pinned version of a cluster tool. */
export function clusterToolVersion(name: ClusterToolName): string {
  return clusterVersions[name].version;
}

/** The node's lock: beside baseDir, since a cleanup empties baseDir. */
export function lockFile(config: ClusterConfig): string {
  return `${config.baseDir}.lock`;
}
