// The configuration of one `granary csi` process, validated before anything is served.
import * as path from 'node:path';
import { z } from 'zod';
import { cacheClientSchema } from './cache';
import { LOG_LEVELS } from './mount';
import { parseConfig } from './parse';

/** Which CSI services a process serves: the chart runs `controller` (Deployment) and `node` (DaemonSet); `all` is for tests and local use. */
export const CSI_MODES = ['controller', 'node', 'all'] as const;

/** A CSI mode. */
export type CsiMode = (typeof CSI_MODES)[number];

/** kubelet's default --root-dir, and so the default of `granary csi --kubelet-dir`. */
export const DEFAULT_KUBELET_DIR = '/var/lib/kubelet';

/** Defaults of the node service's mount processes, each the value used when the option is left out. */
export const MOUNT_PROCESS_CONFIG_DEFAULTS = {
  /** Where per-volume mount logs live: a hostPath in the chart, so they outlive plugin restarts. */
  stateDir: '/var/lib/granary/mounts',
  /** How long a mount process may take to say `ready` (its first object-store call is in that window). */
  readyTimeoutMs: 30_000,
} as const;

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
    kubeletDir: z
      .string()
      .min(1)
      .refine((dir) => path.isAbsolute(dir), '--kubelet-dir must be an absolute path')
      .default(DEFAULT_KUBELET_DIR),
    /** Per-volume mount logs of the node service. Default /var/lib/granary/mounts. */
    stateDir: z.string().min(1).default(MOUNT_PROCESS_CONFIG_DEFAULTS.stateDir),
    /** How long NodeStageVolume waits for a mount to become live (ms). Default 30 s. */
    mountReadyTimeoutMs: z.number().int().min(1000).default(MOUNT_PROCESS_CONFIG_DEFAULTS.readyTimeoutMs),
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
  });

/** A validated CSI configuration. */
export type CsiConfig = z.infer<typeof csiConfigSchema>;

/** Validates `input` into a CsiConfig; throws one readable error listing every problem ("invalid csi configuration: …"). */
export const parseCsiConfig: (input: z.input<typeof csiConfigSchema>) => CsiConfig = parseConfig(csiConfigSchema, 'csi');
