import * as path from 'node:path';
import type { ClusterConfig } from './config';
import type { Pki } from './pki';

/** The node's folders, all under baseDir, so teardown and the leftover check know where to look. */
export interface NodeDirs {
  readonly pki: string;
  readonly etcd: string;
  readonly apiserver: string;
  readonly kubeconfigs: string;
  readonly containerdRoot: string;
  readonly containerdState: string;
  readonly containerdSocket: string;
  readonly containerdConfig: string;
  readonly runcRoot: string;
  readonly cniConf: string;
  readonly cniIpam: string;
  /** The kubelet's --root-dir, a shared mount (the chart's kubeletDir on this node). */
  readonly kubelet: string;
  readonly kubeletConfig: string;
  readonly podLogs: string;
  readonly volumePlugins: string;
  readonly logs: string;
}

/** Where each part of the node keeps its files. */
export function nodeDirs(config: ClusterConfig): NodeDirs {
  const at = (...parts: string[]): string => path.join(config.baseDir, ...parts);
  return {
    pki: at('pki'),
    etcd: at('etcd'),
    apiserver: at('apiserver'),
    kubeconfigs: at('kubeconfigs'),
    containerdRoot: at('containerd', 'root'),
    containerdState: at('containerd', 'state'),
    containerdSocket: at('containerd', 'containerd.sock'),
    containerdConfig: at('containerd', 'config.toml'),
    runcRoot: at('containerd', 'runc'),
    cniConf: at('cni', 'net.d'),
    cniIpam: at('cni', 'ipam'),
    kubelet: at('kubelet'),
    kubeletConfig: at('kubelet-config.json'),
    podLogs: at('pod-logs'),
    volumePlugins: at('volume-plugins'),
    logs: at('logs'),
  };
}

/** Ports on 127.0.0.1 picked free per run (the components no pod needs to reach). */
export interface LocalPorts {
  readonly etcdClient: number;
  readonly etcdPeer: number;
  readonly controllerManager: number;
  readonly scheduler: number;
  readonly kubeletHealthz: number;
}

/** etcd on loopback only: pods cannot reach it (their 127.0.0.1 is their own). */
export function etcdArgs(dirs: NodeDirs, ports: LocalPorts): string[] {
  const client = `http://127.0.0.1:${ports.etcdClient}`;
  const peer = `http://127.0.0.1:${ports.etcdPeer}`;
  return ['--name', 'granary', '--data-dir', dirs.etcd, '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `granary=${peer}`,
    '--initial-cluster-state', 'new', '--log-level', 'warn'];
}

/**
 * The API server on the node's address (the bridge's): client certificates and service-account
 * tokens only (no anonymous requests), Node and RBAC authorization, privileged pods allowed (the
 * chart's node plugin is one).
 */
export function apiServerArgs(config: ClusterConfig, dirs: NodeDirs, pki: Pki, ports: LocalPorts): string[] {
  const serving = pki.cert('apiserver');
  const kubeletClient = pki.cert('apiserver-kubelet-client');
  return [
    `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
    `--bind-address=${config.nodeIp}`, `--advertise-address=${config.nodeIp}`, `--secure-port=${config.apiServerPort}`,
    `--tls-cert-file=${serving.cert}`, `--tls-private-key-file=${serving.key}`, `--cert-dir=${dirs.apiserver}`,
    `--client-ca-file=${pki.caCert}`,
    `--kubelet-client-certificate=${kubeletClient.cert}`, `--kubelet-client-key=${kubeletClient.key}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${pki.serviceAccountPub}`, `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    `--service-cluster-ip-range=${config.serviceCidr}`,
    '--authorization-mode=Node,RBAC', '--anonymous-auth=false', '--allow-privileged=true',
    '--enable-admission-plugins=NodeRestriction', '--profiling=false',
    // The node's name is not in any DNS here: logs and exec reach the kubelet by its address.
    '--kubelet-preferred-address-types=InternalIP',
  ];
}

/** The controller manager on loopback, signing service-account tokens and publishing the CA (kube-root-ca.crt). */
export function controllerManagerArgs(dirs: NodeDirs, pki: Pki, ports: LocalPorts): string[] {
  const kubeconfig = path.join(dirs.kubeconfigs, 'controller-manager.json');
  return [
    `--kubeconfig=${kubeconfig}`, `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`,
    '--bind-address=127.0.0.1', `--secure-port=${ports.controllerManager}`, '--leader-elect=false',
    `--service-account-private-key-file=${pki.serviceAccountKey}`, `--root-ca-file=${pki.caCert}`,
    '--use-service-account-credentials=true',
    `--cluster-signing-cert-file=${pki.caCert}`, `--cluster-signing-key-file=${pki.caKey}`,
    // Else it creates /usr/libexec/kubernetes/kubelet-plugins, outside the harness's folder.
    `--flex-volume-plugin-dir=${dirs.volumePlugins}`,
  ];
}

/** The scheduler on loopback. */
export function schedulerArgs(dirs: NodeDirs, ports: LocalPorts): string[] {
  const kubeconfig = path.join(dirs.kubeconfigs, 'scheduler.json');
  return [
    `--kubeconfig=${kubeconfig}`, `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`,
    '--bind-address=127.0.0.1', `--secure-port=${ports.scheduler}`, '--leader-elect=false',
  ];
}

/**
 * containerd with its own root, state dir and socket (no clash with a containerd of the host), the
 * CRI plugin as this machine needs it: cgroupfs (no systemd as init), restrict_oom_score_adj (root
 * lacks CAP_SYS_RESOURCE here, so runc may not lower a score below containerd's), overlayfs, runc's
 * state and the pods' network namespaces under the harness's dirs, the CNI config of the pod bridge.
 */
export function containerdConfig(dirs: NodeDirs, sandboxImage: string): string {
  const q = JSON.stringify;
  return `version = 2
root = ${q(dirs.containerdRoot)}
state = ${q(dirs.containerdState)}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ${q(dirs.containerdSocket)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(path.join(dirs.containerdRoot, 'opt'))}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(sandboxImage)}
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = ${q(dirs.runcRoot)}

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ${q(dirs.cniConf)}
    max_conf_num = 1
`;
}

/** The pod network's CNI name (libcni names its cached results after it). */
export const CNI_NETWORK = 'granary-bed';

/**
 * The pod network: Debian's bridge plugin on the harness's bridge with host-local addresses, and
 * portmap for hostPorts (containerd adds loopback itself). isGateway and ipMasq are off: the bridge's
 * address is the harness's, the default route points at it, and nothing is NAT-ed off the machine
 * (the plugin would also switch on ip_forward for a gateway).
 */
export function cniConfig(config: ClusterConfig, dirs: NodeDirs): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: CNI_NETWORK,
    plugins: [
      {
        type: 'bridge',
        bridge: config.bridge,
        isGateway: false,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: config.podCidr, rangeStart: config.nodeIp.replace(/\.\d+$/, '.10'), gateway: config.nodeIp }]],
          routes: [{ dst: '0.0.0.0/0', gw: config.nodeIp }],
          dataDir: dirs.cniIpam,
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  }, null, 2);
}

/** Named thresholds of the kubelet: low, since the test machine's disk may be nearly full of caches. */
export const EVICTION_HARD = { 'memory.available': '100Mi', 'nodefs.available': '1%', 'nodefs.inodesFree': '1%', 'imagefs.available': '1%' };

/**
 * The kubelet: cgroupfs under the harness's cgroup, swap and cgroup v1 tolerated (this machine has
 * v1), no iptables chains of its own, eviction thresholds low and image GC off (the imported images
 * cannot be pulled again), no DNS inherited from the host (its resolvers are not the harness's).
 */
export function kubeletConfig(config: ClusterConfig, dirs: NodeDirs, pki: Pki, ports: LocalPorts): string {
  return JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: config.nodeIp,
    port: config.kubeletPort,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: ports.kubeletHealthz,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: pki.caCert } },
    authorization: { mode: 'Webhook' },
    containerRuntimeEndpoint: `unix://${dirs.containerdSocket}`,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: `/${config.cgroup}`,
    failSwapOn: false,
    failCgroupV1: false,
    makeIPTablesUtilChains: false,
    evictionHard: EVICTION_HARD,
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    resolvConf: '',
    podLogsDir: dirs.podLogs,
    volumePluginDir: dirs.volumePlugins,
    serializeImagePulls: false,
  }, null, 2);
}

/** The kubelet's flags (what its config file cannot say). */
export function kubeletArgs(config: ClusterConfig, dirs: NodeDirs): string[] {
  return [
    `--config=${dirs.kubeletConfig}`, `--kubeconfig=${path.join(dirs.kubeconfigs, 'kubelet.json')}`,
    `--root-dir=${dirs.kubelet}`, `--hostname-override=${config.nodeName}`, `--node-ip=${config.nodeIp}`,
    `--cert-dir=${path.join(dirs.kubelet, 'pki')}`,
  ];
}
