import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { MOUNT_PROCESS_CONFIG_DEFAULTS } from '../../config/csi';
import type { Logger } from '../../log/logger';
import { CsiError } from '../errors';
import { findMount, type Mounter, type MountEntry } from './mounter';
import { mountEnvironment } from './mount-process';
import {
  buildMountPod, buildMountSecret, cacheTokenFile, MOUNT_CONTAINER, MOUNT_POD_ANNOTATIONS, mountPodEnvironment, mountPodName, mountPodPaths,
  mountPodSelector, type MountPodPaths, type MountPodTemplate,
} from './mount-pod-spec';
import type { PodApi } from './pod-api';
import { METRICS_SOCKET_NAME, readsThroughCache, type MountRecord, type MountRequest, type MountSupervisor } from './supervisor';

/** Defaults of MountPodsOptions, each the value used when the option is left out. */
export const MOUNT_PODS_DEFAULTS = {
  /** The node service's defaults (`granary csi --state-dir`, `--mount-ready-timeout`), documented in config/csi.ts. */
  ...MOUNT_PROCESS_CONFIG_DEFAULTS,
  /** How often a starting or stopping mount is looked at (the mount table, and the Pod through the API). */
  pollMs: 500,
  /** How long past the Pod's grace period a stop waits for its mount to go before detaching it (umount -l). */
  unmountMarginMs: 5_000,
  /** Lines of the mount Pod's log quoted in a failed stage's error message. */
  logTailLines: 20,
  /** Characters of those lines kept (the end): kubelet events and gRPC messages stay readable. */
  logTailChars: 2000,
} as const;

/** Pod phases after which a Pod never runs again (restartPolicy Never). */
const FINISHED_PHASES = new Set(['Succeeded', 'Failed']);

/** How MountPods makes and finds mount Pods; every optional field has a documented default. */
export interface MountPodsOptions {
  /** Pods and Secrets in granary's namespace. */
  api: PodApi;
  /** Reads the mount table (readiness, adoption) and makes the staging bind. */
  mounter: Mounter;
  /** What every mount Pod of this node shares (image, node, priority, grace period). */
  template: MountPodTemplate;
  /** Host directory of the Pods' mount points, `<podDir>/<volume-hash>/mnt`: a shared mount the node plugin sees (below the kubelet's directory). */
  podDir: string;
  /** See MOUNT_PODS_DEFAULTS.stateDir: the volumes' --state-dir is `<stateDir>/<volume-hash>`, as with mount processes. */
  stateDir?: string;
  /** See MOUNT_PODS_DEFAULTS.readyTimeoutMs. */
  readyTimeoutMs?: number;
  /** See MOUNT_PODS_DEFAULTS.pollMs. */
  pollMs?: number;
  /** See MOUNT_PODS_DEFAULTS.unmountMarginMs. */
  unmountMarginMs?: number;
  /** See MOUNT_PODS_DEFAULTS.logTailLines. */
  logTailLines?: number;
  /** See MOUNT_PODS_DEFAULTS.logTailChars. */
  logTailChars?: number;
  /** The environment the mounts' plumbing variables are taken from; default process.env. */
  baseEnvironment?: NodeJS.ProcessEnv;
  /** Reads the cache token file named by --cache-token-file; exposed for testing. */
  readFile?: (file: string) => Promise<string>;
  /** Creates a directory and its parents; exposed for testing. */
  makeDirectory?: (dir: string) => Promise<void>;
  /** The random suffix of Pod names; exposed for testing. */
  randomSuffix?: () => string;
}

/** A mount Pod MountPods started or adopted. */
interface Running {
  record: MountRecord;
  podName: string;
  paths: MountPodPaths;
}

/** A staging bind onto a Pod's mount point is the same mount when both show one device and root. */
function sameMount(a: { device: string; root: string } | undefined, b: { device: string; root: string } | undefined): boolean {
  return a !== undefined && b !== undefined && a.device === b.device && a.root === b.root;
}

/** A Pod's state in a few words: its phase, and why its container is not running. */
export function describePodStatus(pod: V1Pod | undefined): string {
  if (!pod) return 'the Pod no longer exists';
  const status = pod.status;
  const parts = [status?.phase ?? 'Unknown'];
  if (status?.reason || status?.message) parts.push(`(${[status.reason, status.message].filter(Boolean).join(': ')})`);
  const container = status?.containerStatuses?.find((candidate) => candidate.name === MOUNT_CONTAINER);
  const waiting = container?.state?.waiting;
  const terminated = container?.state?.terminated;
  if (waiting) parts.push(`container waiting: ${[waiting.reason, waiting.message].filter(Boolean).join(': ')}`);
  if (terminated) parts.push(`container exited with code ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ''}${terminated.message ? `: ${terminated.message}` : ''}`);
  return parts.join(', ');
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Supervises one mount Pod per staged volume on this node: the mounts live outside the node plugin's
 * container, so restarting or upgrading the plugin leaves them serving, and the next plugin adopts them.
 */
export class MountPods implements MountSupervisor {
  private readonly running = new Map<string, Running>();
  private readonly api: PodApi;
  private readonly mounter: Mounter;
  private readonly template: MountPodTemplate;
  private readonly podDir: string;
  private readonly stateDir: string;
  private readonly readyTimeoutMs: number;
  private readonly pollMs: number;
  private readonly unmountMarginMs: number;
  private readonly logTailLines: number;
  private readonly logTailChars: number;
  private readonly baseEnvironment: NodeJS.ProcessEnv;
  private readonly readFile: (file: string) => Promise<string>;
  private readonly makeDirectory: (dir: string) => Promise<void>;
  private readonly randomSuffix: () => string;

  constructor(options: MountPodsOptions) {
    this.api = options.api;
    this.mounter = options.mounter;
    this.template = options.template;
    this.podDir = options.podDir;
    this.stateDir = options.stateDir ?? MOUNT_PODS_DEFAULTS.stateDir;
    this.readyTimeoutMs = options.readyTimeoutMs ?? MOUNT_PODS_DEFAULTS.readyTimeoutMs;
    this.pollMs = options.pollMs ?? MOUNT_PODS_DEFAULTS.pollMs;
    this.unmountMarginMs = options.unmountMarginMs ?? MOUNT_PODS_DEFAULTS.unmountMarginMs;
    this.logTailLines = options.logTailLines ?? MOUNT_PODS_DEFAULTS.logTailLines;
    this.logTailChars = options.logTailChars ?? MOUNT_PODS_DEFAULTS.logTailChars;
    this.baseEnvironment = options.baseEnvironment ?? process.env;
    this.readFile = options.readFile ?? ((file) => fs.promises.readFile(file, 'utf8'));
    this.makeDirectory = options.makeDirectory ?? (async (dir) => void (await fs.promises.mkdir(dir, { recursive: true })));
    this.randomSuffix = options.randomSuffix ?? (() => randomBytes(3).toString('hex'));
  }

  /** The volume's mount Pod, if this plugin started or adopted it. */
  describe(volumeId: string): MountRecord | undefined {
    return this.running.get(volumeId)?.record;
  }

  /** Every mount Pod this plugin started or adopted. */
  list(): MountRecord[] {
    return [...this.running.values()].map((running) => running.record);
  }

  /**
   * Starts the mount Pod of a volume:
   * 1. clear a mount left at the Pod's mount point (a dead one from a Pod that was killed);
   * 2. create the Pod, then its Secret (owned by the Pod, so it needs the Pod's uid; the kubelet waits for the Secret);
   * 3. wait for the mount point to be a live mount, the Pod to finish, or the ready timeout;
   * 4. bind-mount the mount point onto the staging path, read-only when asked.
   * If 2, 3 or 4 fails: delete the Pod and the Secret, unmount, and throw with the Pod's status and last log lines.
   */
  async start(request: MountRequest, log: Logger): Promise<MountRecord> {
    const { volumeId, stagingTargetPath, readOnly } = request;
    const existing = this.running.get(volumeId);
    if (existing) {
      throw new CsiError('FAILED_PRECONDITION', `volume ${volumeId} already has a mount Pod (${existing.podName}) for ${existing.record.stagingTargetPath}; unstage it first`);
    }
    const paths = mountPodPaths(this.podDir, this.stateDir, volumeId, stagingTargetPath);

    // 1. The Pod mounts on an existing directory; whatever an earlier Pod left there is in the way.
    await this.makeDirectory(paths.mountPoint);
    if ((await this.mounter.isMountPoint(paths.mountPoint)) !== 'not-mounted') {
      log.warn({ mountPoint: paths.mountPoint }, 'a mount left by an earlier mount Pod of this volume is in the way; unmounting it');
      await this.mounter.unmount(paths.mountPoint);
    }

    // 2. The Pod, then its Secret. Credentials go into the Secret only: the Pod names its keys, never their values.
    const environment = mountPodEnvironment(mountEnvironment(this.baseEnvironment, request.settings));
    const tokenFile = cacheTokenFile(request.flags);
    const cacheToken = tokenFile === undefined ? undefined : await this.readFile(tokenFile);
    const podName = mountPodName(volumeId, this.randomSuffix);
    const pod = buildMountPod(this.template, request, paths, podName, Object.keys(environment).sort());
    let created: V1Pod;
    try {
      created = await this.api.createPod(pod);
    } catch (error) {
      throw new CsiError('INTERNAL', `could not create the mount Pod of volume ${volumeId} in namespace ${this.api.namespace}: ${(error as Error).message}; check the node plugin's RBAC and the chart's mount Pod admission policy`, { cause: error });
    }
    const logHint = `the mount Pod's log (kubectl -n ${this.api.namespace} logs ${podName})`;
    log.info({ pod: podName, stagingTargetPath, readOnly, mountPoint: paths.mountPoint }, 'created the mount Pod');

    let failure: string | undefined;
    let code: 'INTERNAL' | 'DEADLINE_EXCEEDED' = 'INTERNAL';
    try {
      await this.api.createSecret(buildMountSecret(created, environment, cacheToken));
      // 3. Readiness: the mount table is the proof; the Pod's status only says when to stop waiting.
      const outcome = await this.waitReady(podName, paths.mountPoint);
      if (outcome === 'timeout') {
        failure = `was not ready within ${this.readyTimeoutMs} ms`;
        code = 'DEADLINE_EXCEEDED';
      } else if (outcome !== 'ready') {
        failure = outcome;
      } else {
        // 4. The staging path is a bind of the Pod's mount, so the kubelet's publish binds reach the same FUSE connection.
        await this.mounter.bindMount(paths.mountPoint, stagingTargetPath, readOnly);
      }
    } catch (error) {
      failure = `could not be set up: ${(error as Error).message}`;
    }

    if (failure !== undefined) {
      const status = describePodStatus(await this.api.readPod(podName).catch(() => undefined));
      const tail = await this.logTail(podName);
      await this.remove(podName, paths, 0, log);
      throw new CsiError(code, `granary mount of volume ${volumeId} in Pod ${this.api.namespace}/${podName} ${failure}; Pod status: ${status}${tail ? `; last lines of its log:\n${tail}\n` : '; '}the Pod and its Secret were deleted`);
    }

    // The Pod serves its counters on a socket in the volume's state folder, the same host path here (see buildMountPod).
    const metricsSocket = readsThroughCache(request.flags) ? path.join(paths.stateDir, METRICS_SOCKET_NAME) : undefined;
    const record: MountRecord = { volumeId, stagingTargetPath, readOnly, logHint, ...(metricsSocket && { metricsSocket }) };
    this.running.set(volumeId, { record, podName, paths });
    log.info({ pod: podName, stagingTargetPath, readOnly, mountPoint: paths.mountPoint }, 'granary mount is live: volume staged');
    return record;
  }

  /**
   * Stops a volume's mount Pod: unmount the staging bind, delete the Pod (its grace period lets the mount
   * flush and unmount itself) and its Secret, and wait for the mount to go (else detach it).
   */
  async stop(volumeId: string, log: Logger): Promise<boolean> {
    const running = this.running.get(volumeId);
    if (!running) return false;
    const { stagingTargetPath } = running.record;
    log.info({ pod: running.podName, stagingTargetPath }, 'stopping the mount Pod');
    if ((await this.mounter.isMountPoint(stagingTargetPath)) !== 'not-mounted') await this.mounter.unmount(stagingTargetPath);
    await this.remove(running.podName, running.paths, this.template.terminationGracePeriodSeconds, log);
    if (this.running.get(volumeId) === running) this.running.delete(volumeId);
    return true;
  }

  /**
   * Adopts the mount Pods of this node that still serve a staged volume, and deletes the others. A Pod is
   * adopted when it is Running, its mount point is a live mount, and the staging path it was made for is
   * bound to that mount; otherwise it is stale (finished, its mount dead, or never bound because the plugin
   * stopped mid-stage): the Pod and its Secret are deleted and its mount point unmounted. The kubelet
   * stages again any volume whose staging path is then dead.
   */
  async adopt(log: Logger): Promise<void> {
    let pods: V1Pod[];
    try {
      pods = await this.api.listPods(mountPodSelector(this.template.nodeName), this.template.nodeName);
    } catch (error) {
      throw new Error(`cannot list the mount Pods of node ${this.template.nodeName} in namespace ${this.api.namespace}: ${(error as Error).message}; check the node plugin's RBAC (pods: list)`, { cause: error });
    }
    const mounts = await this.mounter.listMounts();
    const adopted: string[] = [];
    const stale: Array<Promise<void>> = [];
    for (const pod of pods) {
      const podName = pod.metadata?.name ?? '';
      // A Pod being deleted is already on its way out (a stop the previous plugin began).
      if (!podName || pod.metadata?.deletionTimestamp) continue;
      const annotations = pod.metadata?.annotations ?? {};
      const volumeId = annotations[MOUNT_POD_ANNOTATIONS.volumeId] ?? '';
      const stagingTargetPath = annotations[MOUNT_POD_ANNOTATIONS.stagingTargetPath] ?? '';
      const paths = mountPodPaths(this.podDir, this.stateDir, volumeId, stagingTargetPath);
      const reason = await this.staleReason(pod, volumeId, stagingTargetPath, paths, mounts);
      if (reason === undefined) {
        // Its flags are not kept: a metrics socket in its state folder says it serves one.
        const metricsSocket = path.join(paths.stateDir, METRICS_SOCKET_NAME);
        const record: MountRecord = {
          volumeId, stagingTargetPath, readOnly: annotations[MOUNT_POD_ANNOTATIONS.readOnly] === 'true',
          logHint: `the mount Pod's log (kubectl -n ${this.api.namespace} logs ${podName})`, ...(fs.existsSync(metricsSocket) && { metricsSocket }),
        };
        this.running.set(volumeId, { record, podName, paths });
        adopted.push(podName);
        log.info({ pod: podName, volumeId, stagingTargetPath }, 'adopted a mount Pod: the volume stays mounted, served by the Pod an earlier node plugin started');
      } else {
        log.warn({ pod: podName, volumeId, stagingTargetPath, reason }, `deleting a stale mount Pod: ${reason}`);
        stale.push(this.remove(podName, volumeId ? paths : undefined, 0, log));
      }
    }
    await Promise.all(stale);
    log.info({ adopted: adopted.length, deleted: stale.length }, `mount Pods on this node: ${adopted.length} adopted, ${stale.length} stale deleted`);
  }

  /** Why a listed mount Pod cannot be adopted, or undefined when it can. */
  private async staleReason(pod: V1Pod, volumeId: string, stagingTargetPath: string, paths: MountPodPaths, mounts: readonly MountEntry[]): Promise<string | undefined> {
    if (!volumeId || !stagingTargetPath) return 'it lacks the volume-id or staging-target-path annotation';
    if (this.running.has(volumeId)) return `volume ${volumeId} already has a mount Pod (${this.running.get(volumeId)?.podName})`;
    const phase = pod.status?.phase ?? 'Unknown';
    if (phase !== 'Running') return `it is ${describePodStatus(pod)}`;
    const state = await this.mounter.isMountPoint(paths.mountPoint);
    if (state !== 'mounted') return `its mount point ${paths.mountPoint} is ${state === 'corrupt' ? 'a dead mount' : 'not mounted'}`;
    if ((await this.mounter.isMountPoint(stagingTargetPath)) !== 'mounted' || !sameMount(findMount(mounts, stagingTargetPath), findMount(mounts, paths.mountPoint))) {
      return `the staging path ${stagingTargetPath} is not bound to its mount (the node plugin stopped before staging finished, or the volume was unstaged)`;
    }
    return undefined;
  }

  /** Polls until the mount point is live ('ready'), the Pod can no longer make it live (why, in words), or the timeout. */
  private async waitReady(podName: string, mountPoint: string): Promise<'ready' | 'timeout' | string> {
    const deadline = Date.now() + this.readyTimeoutMs;
    for (;;) {
      if ((await this.mounter.isMountPoint(mountPoint)) === 'mounted') return 'ready';
      const pod = await this.api.readPod(podName);
      if (!pod) return 'was deleted before it was ready';
      if (FINISHED_PHASES.has(pod.status?.phase ?? '')) return 'exited before it was ready';
      if (Date.now() >= deadline) return 'timeout';
      await sleep(Math.min(this.pollMs, Math.max(0, deadline - Date.now())));
    }
  }

  /** The end of the Pod's log, at most logTailChars of its last logTailLines lines ('' when it has none). */
  private async logTail(podName: string): Promise<string> {
    try {
      const tail = (await this.api.podLog(podName, this.logTailLines)).trimEnd();
      return tail.length > this.logTailChars ? `...${tail.slice(-this.logTailChars)}` : tail;
    } catch (error) {
      return `(its log could not be read: ${(error as Error).message})`;
    }
  }

  /**
   * Deletes a Pod and its Secret, then waits up to the grace period (plus a margin) for its mount point to be
   * unmounted by the Pod; what is left (a Pod killed before it could unmount) is detached with umount -l.
   */
  private async remove(podName: string, paths: MountPodPaths | undefined, gracePeriodSeconds: number, log: Logger): Promise<void> {
    await this.api.deletePod(podName, gracePeriodSeconds);
    // The garbage collector would delete the Secret with its owner; deleting it now keeps credentials around no longer than needed.
    await this.api.deleteSecret(podName).catch((error: unknown) => log.warn({ err: error, pod: podName }, 'could not delete the Secret of a mount Pod (the garbage collector deletes it with the Pod)'));
    if (!paths) return;
    const deadline = Date.now() + gracePeriodSeconds * 1000 + this.unmountMarginMs;
    while ((await this.mounter.isMountPoint(paths.mountPoint)) === 'mounted' && Date.now() < deadline) await sleep(this.pollMs);
    if ((await this.mounter.isMountPoint(paths.mountPoint)) !== 'not-mounted') {
      log.warn({ pod: podName, mountPoint: paths.mountPoint }, 'the mount Pod left its mount behind; detaching it');
      await this.mounter.unmount(paths.mountPoint);
    }
  }
}
