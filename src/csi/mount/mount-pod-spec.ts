// The Kubernetes objects of one volume's mount Pod: the Pod that runs `granary mount` on this node and
// the Secret that carries its credentials. Pure functions: MountPods decides when they are made.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { V1EnvVar, V1Pod, V1Secret, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { METRICS_SOCKET_NAME, mountSource, readsThroughCache, volumeHash, type MountRequest } from './supervisor';

/** The value of app.kubernetes.io/managed-by on every mount Pod and Secret: the chart's admission policy admits only those. */
export const MANAGED_BY = 'granary-node';

/** Labels of mount Pods and their Secrets (adoption finds them by these; RBAC cannot, the admission policy does). */
export const MOUNT_POD_LABELS = {
  name: 'app.kubernetes.io/name',
  component: 'app.kubernetes.io/component',
  managedBy: 'app.kubernetes.io/managed-by',
  /** The node the mount serves (its name, or a hash when the name is not a valid label value). */
  node: 'csi.granary.dev/node',
  /** volumeHash of the volume ID. */
  volume: 'csi.granary.dev/volume',
} as const;

/** Annotations of mount Pods: what they serve, in full (a label value cannot hold a volume ID or a path). */
export const MOUNT_POD_ANNOTATIONS = {
  volumeId: 'csi.granary.dev/volume-id',
  stagingTargetPath: 'csi.granary.dev/staging-target-path',
  readOnly: 'csi.granary.dev/read-only',
} as const;

/** The Secret key that holds the cluster cache token, mounted as a file (env keys are variable names, this is not one). */
export const CACHE_TOKEN_KEY = 'cache-token';

/** The mount Pod's one container. */
export const MOUNT_CONTAINER = 'mount';

/**
 * Node-plugin environment variables a mount Pod does not get from its Secret: the Pod has its own
 * (PATH, HOME, the API server's address, its namespace), and no readiness pipe (readiness is the mount table).
 */
const POD_OWN_VARIABLES = new Set(['PATH', 'HOME', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', 'KUBECONFIG', 'POD_NAMESPACE', 'GRANARY_READY_FD']);

/** What is the same for every mount Pod of this node plugin. */
export interface MountPodTemplate {
  /** The node plugin's own image: the mount runs the same build. */
  image: string;
  /** This node's name: spec.nodeName, so the Pod runs here without the scheduler. */
  nodeName: string;
  /** The service account the mount uses to find the cache servers; default the namespace's default one. */
  serviceAccountName?: string;
  /** Keeps the kubelet from evicting a mount under pressure (it never evicts critical Pods); empty for none. */
  priorityClassName: string;
  /** How long a deleted mount Pod has to flush and unmount (the holder unmounts on SIGTERM). */
  terminationGracePeriodSeconds: number;
}

/** Where one volume's mount Pod keeps things on the host; the same paths inside the Pod. */
export interface MountPodPaths {
  /** The Pod's Bidirectional directory (the mount point's parent). */
  volumeDir: string;
  /** Where the Pod mounts FUSE and the node plugin bind-mounts the staging path from. */
  mountPoint: string;
  /** The volume's --state-dir (the upload record and the session journal), shared with the process mounter. */
  stateDir: string;
}

/** The part of a kubelet path from which the kubelet recognises its plugins' mounts (kubelet's HasMountRefs). */
const KUBELET_PLUGINS_SEGMENT = '/plugins/kubernetes.io/';

/**
 * The host paths of a volume's mount Pod: `<podDir>/<hash>/<mount point>` and `<stateDir>/<hash>`. The mount point ends
 * with the staging path's part from `/plugins/kubernetes.io/` on (`mnt` for another staging path): before NodeUnstage
 * the kubelet refuses to unmount a staging path that other mounts of the same filesystem refer to, unless their paths
 * contain that part (its HasMountRefs, which ignores a mounter's own mounts that way); the Pod's mount is one of those.
 */
export function mountPodPaths(podDir: string, stateDir: string, volumeId: string, stagingTargetPath = ''): MountPodPaths {
  const hash = volumeHash(volumeId);
  const volumeDir = path.join(podDir, hash);
  const segment = stagingTargetPath.indexOf(KUBELET_PLUGINS_SEGMENT);
  const mountPoint = segment < 0 ? path.join(volumeDir, 'mnt') : path.join(volumeDir, stagingTargetPath.slice(segment));
  return { volumeDir, mountPoint, stateDir: path.join(stateDir, hash) };
}

/** A label value naming the node: its name when it is a valid label value (63 characters at most), else a hash of it. */
export function nodeLabelValue(nodeName: string): string {
  if (/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(nodeName)) return nodeName;
  return `sha256-${createHash('sha256').update(nodeName).digest('hex').slice(0, 32)}`;
}

/** The labels every mount Pod of `nodeName` carries. */
export function mountPodNodeLabels(nodeName: string): Record<string, string> {
  return {
    [MOUNT_POD_LABELS.name]: 'granary',
    [MOUNT_POD_LABELS.component]: 'mount',
    [MOUNT_POD_LABELS.managedBy]: MANAGED_BY,
    [MOUNT_POD_LABELS.node]: nodeLabelValue(nodeName),
  };
}

/** The label selector of every mount Pod of `nodeName`. */
export function mountPodSelector(nodeName: string): string {
  return Object.entries(mountPodNodeLabels(nodeName)).map(([key, value]) => `${key}=${value}`).join(',');
}

/** A new name for a volume's mount Pod (and its Secret): a random suffix, so a restage never waits for a terminating Pod's name. */
export function mountPodName(volumeId: string, random: () => string): string {
  return `granary-mount-${volumeHash(volumeId).slice(0, 12)}-${random()}`;
}

/** The `--cache-token-file` path in a mount's flags, if any. */
export function cacheTokenFile(flags: readonly string[]): string | undefined {
  const index = flags.indexOf('--cache-token-file');
  return index >= 0 ? flags[index + 1] : undefined;
}

/**
 * The environment of a volume's mount, all of it carried by its Secret: the node plugin's AWS_* and
 * GRANARY_* plumbing and the volume's store settings (the same as a mount process gets, mountEnvironment),
 * without what the Pod has of its own.
 */
export function mountPodEnvironment(processEnvironment: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(processEnvironment).filter(([name]) => !POD_OWN_VARIABLES.has(name)));
}

/** Where the kernel keeps each backing device's settings, read_ahead_kb among them. */
const SYS_BDI = '/sys/devices/virtual/bdi';

/**
 * The mount Pod of a volume: `granary mount SOURCE <mountPoint> [--read-only] --state-dir <stateDir> FLAGS`
 * in the node plugin's image, privileged (FUSE), on this node, never restarted (a new FUSE connection could
 * not reach the staging bind of the old one), every variable from the Secret `name` by key, never a value.
 */
export function buildMountPod(template: MountPodTemplate, request: MountRequest, paths: MountPodPaths, name: string, environment: readonly string[]): V1Pod {
  const tokenFile = cacheTokenFile(request.flags);
  const env: V1EnvVar[] = [
    // The mount finds the cache's EndpointSlices in its own namespace unless its flags name one.
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    ...environment.map((variable) => ({ name: variable, valueFrom: { secretKeyRef: { name, key: variable } } })),
  ];
  const volumes: V1Volume[] = [
    { name: 'dev-fuse', hostPath: { path: '/dev/fuse', type: 'CharDevice' } },
    { name: 'mount-dir', hostPath: { path: paths.volumeDir, type: 'DirectoryOrCreate' } },
    { name: 'state-dir', hostPath: { path: paths.stateDir, type: 'DirectoryOrCreate' } },
    // The FUSE mount raises its read_ahead_kb there (/sys/class/bdi/* link to it); a container's own /sys is read-only.
    { name: 'sys-bdi', hostPath: { path: SYS_BDI, type: 'Directory' } },
  ];
  const volumeMounts: V1VolumeMount[] = [
    { name: 'dev-fuse', mountPath: '/dev/fuse' },
    // The FUSE mount made here must reach the host, where the node plugin binds the staging path to it.
    { name: 'mount-dir', mountPath: paths.volumeDir, mountPropagation: 'Bidirectional' },
    { name: 'state-dir', mountPath: paths.stateDir },
    { name: 'sys-bdi', mountPath: SYS_BDI },
  ];
  if (tokenFile !== undefined) {
    volumes.push({ name: 'cache-token', secret: { secretName: name, items: [{ key: CACHE_TOKEN_KEY, path: path.basename(tokenFile) }], defaultMode: 0o400 } });
    volumeMounts.push({ name: 'cache-token', mountPath: path.dirname(tokenFile), readOnly: true });
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      labels: { ...mountPodNodeLabels(template.nodeName), [MOUNT_POD_LABELS.volume]: volumeHash(request.volumeId) },
      annotations: {
        [MOUNT_POD_ANNOTATIONS.volumeId]: request.volumeId,
        [MOUNT_POD_ANNOTATIONS.stagingTargetPath]: request.stagingTargetPath,
        [MOUNT_POD_ANNOTATIONS.readOnly]: String(request.readOnly),
      },
    },
    spec: {
      nodeName: template.nodeName,
      restartPolicy: 'Never',
      ...(template.priorityClassName ? { priorityClassName: template.priorityClassName } : {}),
      ...(template.serviceAccountName ? { serviceAccountName: template.serviceAccountName } : {}),
      terminationGracePeriodSeconds: template.terminationGracePeriodSeconds,
      // An API token only for a mount that finds the cache servers through the API server; no Service variables in its environment.
      automountServiceAccountToken: request.flags.includes('--cache-kubernetes-service'),
      enableServiceLinks: false,
      // Wherever the node plugin runs (tainted GPU nodes, a node being drained), its mounts must run too.
      tolerations: [{ operator: 'Exists' }],
      containers: [
        {
          name: MOUNT_CONTAINER,
          image: template.image,
          // The node plugin runs this very image on this node, so it is already here.
          imagePullPolicy: 'IfNotPresent',
          args: ['mount', mountSource(request.location), paths.mountPoint, ...(request.readOnly ? ['--read-only'] : []), '--state-dir', paths.stateDir, ...request.flags,
            ...(readsThroughCache(request.flags) ? ['--cache-metrics-socket', path.join(paths.stateDir, METRICS_SOCKET_NAME)] : [])],
          env,
          securityContext: { privileged: true, runAsUser: 0 },
          volumeMounts,
        },
      ],
      volumes,
    },
  };
}

/**
 * The Secret of a volume's mount Pod: its environment by variable name, and the cache token when the mount
 * reads through the cache. Owned by the Pod, so the garbage collector deletes it with the Pod if the node plugin cannot.
 */
export function buildMountSecret(pod: V1Pod, environment: Record<string, string>, cacheToken: string | undefined): V1Secret {
  const name = pod.metadata?.name ?? '';
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name,
      labels: { ...(pod.metadata?.labels ?? {}) },
      annotations: { [MOUNT_POD_ANNOTATIONS.volumeId]: pod.metadata?.annotations?.[MOUNT_POD_ANNOTATIONS.volumeId] ?? '' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name, uid: pod.metadata?.uid ?? '' }],
    },
    stringData: { ...environment, ...(cacheToken !== undefined ? { [CACHE_TOKEN_KEY]: cacheToken } : {}) },
  };
}
