// The configuration of one `granary csi` process, validated before anything is served.
import * as path from 'node:path';
import { z } from 'zod';
import { cacheClientSchema } from './cache';
import { listenAddressSchema } from './listen-address';
import { LOG_LEVELS } from './mount';
import { parseConfig, type ConfigParser } from './parse';

/** The driver name every Kubernetes object refers to (CSIDriver, StorageClass provisioner, PV driver); fixed, not an option. */
export const DRIVER_NAME = 'csi.granary.dev';

/** Which CSI services a process serves: the chart runs `controller` (Deployment) and `node` (DaemonSet); `all` is for tests and local use. */
export const CSI_MODES = ['controller', 'node', 'all'] as const;

/** A CSI mode. */
export type CsiMode = (typeof CSI_MODES)[number];

/** kubelet's default --root-dir, and so the default of `granary csi --kubelet-dir`. */
export const DEFAULT_KUBELET_DIR = '/var/lib/kubelet';

/** The kubelet's plugin folders, below its root directory: the layout the kubelet and every CSI node plugin share. */
export const KUBELET_PLUGIN_DIRS = {
  /** Where the kubelet watches for plugins' registration sockets. */
  registration: 'plugins_registry',
  /** Where CSI drivers keep their sockets, one folder per driver (the chart's socket hostPath). */
  plugins: 'plugins',
} as const;

/** The default of --registration-dir: <kubelet-dir>/plugins_registry. */
export function defaultRegistrationDir(kubeletDir: string): string {
  return path.join(kubeletDir, KUBELET_PLUGIN_DIRS.registration);
}

/** The default of --kubelet-registration-path, where the chart puts the CSI socket on the host: <kubelet-dir>/plugins/csi.granary.dev/csi.sock. */
export function defaultKubeletRegistrationPath(kubeletDir: string): string {
  return path.join(kubeletDir, KUBELET_PLUGIN_DIRS.plugins, DRIVER_NAME, 'csi.sock');
}

/** Defaults of the health endpoint (--health-listen). */
export const HEALTH_DEFAULTS = {
  /** How long GET /healthz waits for the driver's answer to Probe: below the chart's 5 s probe timeout, so the kubelet reads the reason. */
  probeTimeoutMs: 3000,
} as const;

/** An absolute path option; `flag` names it in the error. */
function absolutePath(flag: string) {
  return z
    .string()
    .min(1)
    .refine((value) => path.isAbsolute(value), `${flag} must be an absolute path`);
}

/** Defaults of the node service's mount processes, each the value used when the option is left out. */
export const MOUNT_PROCESS_CONFIG_DEFAULTS = {
  /** Where per-volume mount logs live: a hostPath in the chart, so they outlive plugin restarts. */
  stateDir: '/var/lib/granary/mounts',
  /** How long a mount process may take to say `ready` (its first object-store call is in that window). */
  readyTimeoutMs: 30_000,
} as const;

/** Who runs each staged volume's `granary mount`: a child process of the node plugin, or a mount Pod per volume on its node. */
export const MOUNTERS = ['process', 'pod'] as const;

/** A mounter kind. */
export type MounterKind = (typeof MOUNTERS)[number];

/** Defaults of the mount Pods (--mounter pod). */
export const MOUNT_POD_CONFIG_DEFAULTS = {
  /** The kubelet never evicts critical Pods, and a mount Pod serves running workloads. */
  priorityClassName: 'system-node-critical',
  /** How long a deleted mount Pod has to flush and unmount (the Kubernetes default). */
  gracePeriodSeconds: 30,
} as const;

/** The default of --mount-pod-dir: <kubelet-dir>/plugins/csi.granary.dev/mounts, inside the kubelet's directory, which is a shared mount wherever CSI node plugins work. */
export function defaultMountPodDir(kubeletDir: string): string {
  return path.join(kubeletDir, KUBELET_PLUGIN_DIRS.plugins, DRIVER_NAME, 'mounts');
}

/** Options of `granary csi`, with every default documented. */
export const csiConfigSchema = z
  .object({
    /** Services to serve. Required. */
    mode: z.enum(CSI_MODES),
    /** Where to listen: unix:///path (kubelet and the sidecars) or tcp://host:port. Default unix:///csi/csi.sock (the chart's socket volume). */
    endpoint: z.string().min(1).default('unix:///csi/csi.sock'),
    /** This node's name as Kubernetes knows it (the chart passes spec.nodeName); required in node and all modes. */
    nodeId: z.string().trim().max(256, '--node-id must be at most 256 bytes').optional(),
    /**
     * kubelet's root directory (its --root-dir): the node service mounts only below it, never through a
     * symbolic link. The chart passes its node.kubeletDir value. Default /var/lib/kubelet.
     */
    kubeletDir: absolutePath('--kubelet-dir').default(DEFAULT_KUBELET_DIR),
    /**
     * Register with the kubelet by serving its plugin-registration API on a socket in registrationDir (what the
     * node-driver-registrar sidecar does otherwise); node and all modes. Default false (the chart turns it on).
     */
    registerWithKubelet: z.boolean().default(false),
    /** The directory the kubelet watches for registration sockets; it must exist. Default <kubeletDir>/plugins_registry. */
    registrationDir: absolutePath('--registration-dir').optional(),
    /**
     * The CSI socket's path as the kubelet sees it (on the host), which the kubelet is told to call; in a container
     * it differs from the endpoint's path. Default <kubeletDir>/plugins/csi.granary.dev/csi.sock.
     */
    kubeletRegistrationPath: absolutePath('--kubelet-registration-path').optional(),
    /** Serve GET /healthz (the driver answers Probe: 200, else 500 with the reason) on HOST:PORT. Default none. */
    healthListen: listenAddressSchema('0.0.0.0:9808').optional(),
    /**
     * Serve GET /metrics on HOST:PORT: the process's metrics and, in node and all modes, those of every mount process
     * it started (read from each mount's unix socket, labelled volume_id). Default none.
     */
    metricsListen: listenAddressSchema('0.0.0.0:9809').optional(),
    /** How long /healthz waits for the answer to Probe (ms). Default 3 s. */
    healthProbeTimeoutMs: z.number().int().min(100).max(60_000).default(HEALTH_DEFAULTS.probeTimeoutMs),
    /** Per-volume mount logs of the node service. Default /var/lib/granary/mounts. */
    stateDir: z.string().min(1).default(MOUNT_PROCESS_CONFIG_DEFAULTS.stateDir),
    /** How long NodeStageVolume waits for a mount to become live (ms). Default 30 s. */
    mountReadyTimeoutMs: z.number().int().min(1000).default(MOUNT_PROCESS_CONFIG_DEFAULTS.readyTimeoutMs),
    /**
     * Who runs each volume's `granary mount`: `process`, a child of this process (ends with it), or `pod`, a
     * mount Pod per volume on this node made through the API server (outlives it; adopted at start). Default process.
     */
    mounter: z.enum(MOUNTERS).default('process'),
    /** The mount Pods' image: the node plugin's own. Required with --mounter pod. */
    mountPodImage: z.string().trim().min(1).optional(),
    /** The namespace mount Pods and their Secrets live in: granary's own. Required with --mounter pod (the CLI's default is $POD_NAMESPACE). */
    mountPodNamespace: z.string().trim().min(1).optional(),
    /** The mount Pods' service account (reads the cache's EndpointSlices). Default the namespace's default service account. */
    mountPodServiceAccount: z.string().trim().min(1).optional(),
    /** The mount Pods' priority class; '' for none. Default system-node-critical. */
    mountPodPriorityClass: z.string().trim().default(MOUNT_POD_CONFIG_DEFAULTS.priorityClassName),
    /** How long a deleted mount Pod has to flush and unmount, in seconds. Default 30. */
    mountPodGracePeriodSeconds: z.number().int().min(0).max(3600).default(MOUNT_POD_CONFIG_DEFAULTS.gracePeriodSeconds),
    /** Host directory of the mount Pods' mount points; it must be a shared mount the node plugin sees. Default <kubeletDir>/plugins/csi.granary.dev/mounts. */
    mountPodDir: absolutePath('--mount-pod-dir').optional(),
    /** Volumes the node service accepts on this node; 0 = no limit. Default 0. */
    maxVolumesPerNode: z.number().int().min(0).default(0),
    /** Log level of the JSON log on stderr. Default info. */
    logLevel: z.enum(LOG_LEVELS).default('info'),
    /**
     * The cluster cache the node's mounts read through (src/config/cache.ts), passed to each `granary mount`
     * as its --cache-* flags unless the volume's StorageClass says cache: "false". Default none: mounts read the object store.
     */
    cache: cacheClientSchema.default(cacheClientSchema.parse({})),
  })
  .refine((config) => config.mode === 'controller' || Boolean(config.nodeId), {
    message: '--node-id is required in node and all modes (in Kubernetes pass the pod\'s spec.nodeName)',
    path: ['nodeId'],
  })
  .refine((config) => !(config.registerWithKubelet && config.mode === 'controller'), {
    message: '--register-with-kubelet is for node and all modes: the kubelet registers node plugins, not the controller',
    path: ['registerWithKubelet'],
  })
  .refine((config) => !config.registerWithKubelet || config.endpoint.startsWith('unix://'), {
    message: 'the kubelet calls CSI drivers only over a unix socket: give --endpoint unix:///PATH with --register-with-kubelet',
    path: ['endpoint'],
  })
  .refine((config) => config.cache.metricsSocket === undefined, {
    message: '--cache-metrics-socket is a mount\'s: the node plugin gives each mount its own; serve the node\'s metrics with --metrics-listen',
    path: ['cache', 'metricsSocket'],
  })
  .refine((config) => config.registerWithKubelet || (config.registrationDir === undefined && config.kubeletRegistrationPath === undefined), {
    message: '--registration-dir and --kubelet-registration-path take effect only with --register-with-kubelet: add it, or leave them out',
    path: ['registerWithKubelet'],
  })
  .refine((config) => config.mounter !== 'pod' || (config.mountPodImage !== undefined && config.mountPodNamespace !== undefined), {
    message: '--mounter pod needs --mount-pod-image (the node plugin\'s own image) and --mount-pod-namespace (or $POD_NAMESPACE)',
    path: ['mounter'],
  })
  .transform((config) => ({
    ...config,
    mountPodDir: path.resolve(config.mountPodDir ?? defaultMountPodDir(config.kubeletDir)),
    registrationDir: path.resolve(config.registrationDir ?? defaultRegistrationDir(config.kubeletDir)),
    kubeletRegistrationPath: path.resolve(config.kubeletRegistrationPath ?? defaultKubeletRegistrationPath(config.kubeletDir)),
  }));

/** A validated CSI configuration. */
export type CsiConfig = z.output<typeof csiConfigSchema>;

/** Validates `input` into a CsiConfig; throws one readable error listing every problem ("invalid csi configuration: …"). */
export const parseCsiConfig: ConfigParser<z.input<typeof csiConfigSchema>, CsiConfig> = parseConfig(csiConfigSchema, 'csi');
