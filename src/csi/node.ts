import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log/logger';
import { isReadOnlyMode, validateVolumeCapabilities } from './capabilities';
import { CsiError } from './errors';
import type { NodeGetCapabilitiesResponse } from './generated/csi/v1/NodeGetCapabilitiesResponse';
import type { NodeGetInfoResponse } from './generated/csi/v1/NodeGetInfoResponse';
import type { NodeGetVolumeStatsRequest__Output } from './generated/csi/v1/NodeGetVolumeStatsRequest';
import type { NodeGetVolumeStatsResponse } from './generated/csi/v1/NodeGetVolumeStatsResponse';
import type { NodePublishVolumeRequest__Output } from './generated/csi/v1/NodePublishVolumeRequest';
import type { NodePublishVolumeResponse } from './generated/csi/v1/NodePublishVolumeResponse';
import type { NodeStageVolumeRequest__Output } from './generated/csi/v1/NodeStageVolumeRequest';
import type { NodeStageVolumeResponse } from './generated/csi/v1/NodeStageVolumeResponse';
import type { NodeUnpublishVolumeRequest__Output } from './generated/csi/v1/NodeUnpublishVolumeRequest';
import type { NodeUnpublishVolumeResponse } from './generated/csi/v1/NodeUnpublishVolumeResponse';
import type { NodeUnstageVolumeRequest__Output } from './generated/csi/v1/NodeUnstageVolumeRequest';
import type { NodeUnstageVolumeResponse } from './generated/csi/v1/NodeUnstageVolumeResponse';
import { InFlight } from './inflight';
import { KubeletPaths } from './kubelet-paths';
import { findMount, isReadOnlyMount, type Mounter, type MountEntry } from './mount/mounter';
import { mountArguments } from './mount/mount-arguments';
import { mountSource, type MountSupervisor } from './mount/supervisor';
import { checkWholeBucket } from './parameters';
import type { Rpc } from './rpc';
import { settingsFromSecrets } from './secrets';
import { parseVolumeId, type VolumeLocation } from './volume-id';
import { statFilesystem, volumeUsage, type StatFilesystem } from './volume-stats';

/** The filesystem type `granary mount` shows in mountinfo. */
export const GRANARY_FS_TYPE = 'fuse.granary';

/** Longest node ID the CSI spec allows (NodeGetInfoResponse.node_id: "SHALL NOT exceed 256 bytes"). */
export const MAX_NODE_ID_BYTES = 256;

/** What the node service needs: who it is, how to mount, and who runs the volumes' granary mounts. */
export interface NodeDeps {
  /** This node's ID as the CO will send it back (the Kubernetes node name). */
  nodeId: string;
  /** kubelet's root directory: every staging and target path must be below it (config default /var/lib/kubelet). */
  kubeletDir: string;
  mounter: Mounter;
  /** Runs each staged volume's granary mount: child processes (MountProcesses) or mount Pods (MountPods). */
  mountProcesses: MountSupervisor;
  /** The per-volume lock set; shared with the controller when both run in one process. */
  inflight?: InFlight;
  /** Volumes the CO may publish to this node; 0 (the default) lets the CO decide. */
  maxVolumesPerNode?: number;
  /** statfs(2), exposed for testing. */
  statfs?: StatFilesystem;
  /**
   * The `--cache-*` flags of `granary mount` naming this node's cluster cache (mount-arguments.ts cacheFlags);
   * each volume's mount gets them unless its volume_context says cache "false". Default none: mounts read the object store.
   */
  cacheFlags?: readonly string[];
}

/** The CSI Node service. */
export interface NodeService {
  NodeStageVolume: Rpc<NodeStageVolumeRequest__Output, NodeStageVolumeResponse>;
  NodeUnstageVolume: Rpc<NodeUnstageVolumeRequest__Output, NodeUnstageVolumeResponse>;
  NodePublishVolume: Rpc<NodePublishVolumeRequest__Output, NodePublishVolumeResponse>;
  NodeUnpublishVolume: Rpc<NodeUnpublishVolumeRequest__Output, NodeUnpublishVolumeResponse>;
  NodeGetCapabilities: Rpc<unknown, NodeGetCapabilitiesResponse>;
  NodeGetInfo: Rpc<unknown, NodeGetInfoResponse>;
  NodeGetVolumeStats: Rpc<NodeGetVolumeStatsRequest__Output, NodeGetVolumeStatsResponse>;
}

/** The InFlight key of a path, kept apart from volume IDs (which cannot start with '/'). */
function pathKey(target: string): string {
  return `path:${target}`;
}

/** Holds every key in turn (the volume, then a path), so two volumes aimed at one path cannot race either. */
function holdAll<T>(inflight: InFlight, keys: readonly string[], operation: string, work: () => Promise<T>): Promise<T> {
  const [first, ...rest] = keys;
  if (first === undefined) return work();
  return inflight.run(first, operation, () => holdAll(inflight, rest, operation, work));
}

/**
 * True when a mount is `granary mount` serving this volume. The source column is compared only when
 * it is an s3:// URL, so a mount made by an older build with another fsname is still recognised by type.
 */
function isGranaryMountOf(entry: MountEntry, location: VolumeLocation): boolean {
  if (entry.fsType !== GRANARY_FS_TYPE) return false;
  if (!entry.source.startsWith('s3://')) return true;
  const trim = (source: string) => source.replace(/\/+$/, '');
  return trim(entry.source) === trim(mountSource(location));
}

function describeMount(entry: MountEntry | undefined): string {
  return entry ? `${entry.fsType} ${entry.source}${isReadOnlyMount(entry) ? ' (read-only)' : ''}` : 'an unknown mount';
}

/** Removes a directory this service created, never its contents: a leftover file means the unmount did not happen. */
async function removeDirectory(target: string): Promise<void> {
  try {
    await fs.promises.rmdir(target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      throw new CsiError('INTERNAL', `${target} is not a mount point but is not empty; granary refuses to delete it (check what wrote into it, then remove it by hand)`, { cause: error });
    }
    throw error;
  }
}

/**
 * Cleans up a staging or target path whose last component is a symbolic link, without following it.
 *
 * Spec (NodeUnpublishVolume, NodeUnstageVolume): "This RPC MUST undo the work by the corresponding
 * NodePublishVolume" (NodeStageVolume) and "This operation MUST be idempotent". Nothing either made can
 * be reached through the link: they refuse links, the kernel mounts on the directory a path resolves to,
 * and a mount point cannot be replaced while mounted (EBUSY) except from another mount namespace, which
 * detaches the mount (rmdir) or takes it along (rename). So nothing is unmounted: umount would follow
 * the link and unmount whatever it points at (another pod's volume, a host mount). The link itself is
 * removed (unlink never touches its target) and the call answers OK, so the CO's retry ends instead of
 * failing with ENOTDIR for ever.
 */
async function removeLink(linkPath: string, log: Logger): Promise<void> {
  log.warn({ path: linkPath, pointsTo: await fs.promises.readlink(linkPath).catch(() => undefined) }, 'a symbolic link is where granary mounted; removing the link, following nothing');
  await fs.promises.unlink(linkPath).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/** Creates a directory and tells whether it was missing (so a failed operation can remove only what it made). */
async function ensureDirectory(target: string): Promise<boolean> {
  const created = await fs.promises.mkdir(target, { recursive: true });
  return created !== undefined;
}

/** Builds the Node service over a mounter and a mount supervisor. */
export function createNodeService(deps: NodeDeps): NodeService {
  const { mounter, mountProcesses } = deps;
  const paths = new KubeletPaths(deps.kubeletDir);
  const cacheFlags = deps.cacheFlags ?? [];
  const inflight = deps.inflight ?? new InFlight();
  if (!deps.nodeId || Buffer.byteLength(deps.nodeId) > MAX_NODE_ID_BYTES) {
    throw new Error(`node ID ${JSON.stringify(deps.nodeId)} must be 1-${MAX_NODE_ID_BYTES} bytes (use the Kubernetes node name)`);
  }
  const statfs = deps.statfs ?? statFilesystem;
  const maxVolumesPerNode = deps.maxVolumesPerNode ?? 0;
  if (!Number.isInteger(maxVolumesPerNode) || maxVolumesPerNode < 0) {
    throw new Error(`maxVolumesPerNode must be a whole number >= 0 (0 lets the CO decide), got ${maxVolumesPerNode}`);
  }

  return {
    NodeStageVolume: async (request, { log }) => {
      const location = parseVolumeId(request.volume_id);
      const volumeId = request.volume_id;
      checkWholeBucket(location, volumeId, request.volume_context);
      const stagingTargetPath = paths.require(request.staging_target_path, 'staging_target_path');
      validateVolumeCapabilities(request.volume_capability, 'volume_capability');
      const settings = settingsFromSecrets(request.secrets);
      const readOnly = isReadOnlyMode(request.volume_capability?.access_mode?.mode);
      const flags = mountArguments(request.volume_context, cacheFlags);

      return holdAll(inflight, [volumeId, pathKey(stagingTargetPath)], 'NodeStageVolume', async () => {
        // 0. Never through a link: mount(8), statfs and mkdir would follow it out of the kubelet directory.
        await paths.refuseLinks(stagingTargetPath, 'staging_target_path');

        // 1. Already staged here?
        const state = await mounter.isMountPoint(stagingTargetPath);
        if (state === 'mounted') {
          const entry = findMount(await mounter.listMounts(), stagingTargetPath);
          if (entry && isGranaryMountOf(entry, location)) {
            // Spec: "If the volume corresponding to the volume_id is already staged to the staging_target_path,
            // and is identical to the specified volume_capability the Plugin MUST reply 0 OK."
            if (isReadOnlyMount(entry) === readOnly) return {};
            // Spec (NodeStageVolume errors): "Volume published but is incompatible | 6 ALREADY_EXISTS".
            throw new CsiError('ALREADY_EXISTS', `volume ${volumeId} is already staged at ${stagingTargetPath} ${readOnly ? 'read-write' : 'read-only'}, which is incompatible with the requested ${readOnly ? 'read-only' : 'read-write'} access mode; unstage it first`);
          }
          throw new CsiError('ALREADY_EXISTS', `staging_target_path ${stagingTargetPath} already holds another mount (${describeMount(entry)}); unmount it or stage volume ${volumeId} elsewhere`);
        }

        // 2. A dead mount (its FUSE process is gone) or a process that lost its mount: clear both, then stage afresh.
        const running = mountProcesses.describe(volumeId);
        if (running && running.stagingTargetPath !== stagingTargetPath) {
          // The CO "SHALL ensure that there is only one staging_target_path per volume".
          throw new CsiError('FAILED_PRECONDITION', `volume ${volumeId} is already staged at ${running.stagingTargetPath} on this node; the CO must unstage it there before staging it at ${stagingTargetPath}`);
        }
        if (running) await mountProcesses.stop(volumeId, log);
        if (state === 'corrupt') {
          log.warn({ stagingTargetPath }, 'staging path is a dead mount (its granary mount exited); unmounting it and staging again');
          await mounter.unmount(stagingTargetPath);
        }

        // 3. The CO creates the directory, but a node restart can lose it (tmpfs /var/lib/kubelet on some distributions).
        await ensureDirectory(stagingTargetPath);

        // 4. One mount process for the volume; start() resolves only once the staging path is live, and cleans up when it fails.
        log.info({ stagingTargetPath, readOnly, flags }, 'staging the volume with these granary mount flags');
        await mountProcesses.start({ volumeId, location, stagingTargetPath, readOnly, settings, flags }, log);
        return {};
      });
    },

    NodeUnstageVolume: async (request, { log }) => {
      parseVolumeId(request.volume_id);
      const volumeId = request.volume_id;
      const stagingTargetPath = paths.require(request.staging_target_path, 'staging_target_path');

      return holdAll(inflight, [volumeId, pathKey(stagingTargetPath)], 'NodeUnstageVolume', async () => {
        const running = mountProcesses.describe(volumeId);
        const ours = running?.stagingTargetPath === stagingTargetPath;

        // 0. A link where the staging directory was (see removeLink): nothing is unmounted through it.
        const link = await paths.findLink(stagingTargetPath);
        if (link) {
          if (!link.final && ours) {
            // The mount process unmounts its own path when stopped, and would follow this link.
            throw new CsiError('FAILED_PRECONDITION', `staging_target_path ${stagingTargetPath} goes through the symbolic link ${link.link} (to ${link.pointsTo}) while volume ${volumeId} is staged there; granary will not unmount through a link: put the directory back in place of ${link.link}`);
          }
          if (link.final) await removeLink(stagingTargetPath, log);
          if (ours) await mountProcesses.stop(volumeId, log);
          return {};
        }

        // 1. Stop the mount process: SIGTERM lets it flush and unmount itself. After a plugin restart there is
        //    no process in memory, and step 2 alone does the work.
        if (ours) await mountProcesses.stop(volumeId, log);

        // 2. Unmount whatever is left, live or dead (a SIGKILLed process leaves a mount that answers ENOTCONN).
        // Spec: "If the volume corresponding to the volume_id is not staged to the staging_target_path, the Plugin MUST reply 0 OK."
        if ((await mounter.isMountPoint(stagingTargetPath)) !== 'not-mounted') await mounter.unmount(stagingTargetPath);

        // 3. The staging directory stays: the CO created it and removes it ("The CO SHALL be responsible for creating the directory").
        return {};
      });
    },

    NodePublishVolume: async (request, { log }) => {
      const location = parseVolumeId(request.volume_id);
      const volumeId = request.volume_id;
      checkWholeBucket(location, volumeId, request.volume_context);
      const targetPath = paths.require(request.target_path, 'target_path');
      validateVolumeCapabilities(request.volume_capability, 'volume_capability');
      if (!request.staging_target_path) {
        // Spec (NodePublishVolume errors): "Staging target path not set | 9 FAILED_PRECONDITION | Indicates that
        // STAGE_UNSTAGE_VOLUME capability is set but no staging_target_path was set."
        throw new CsiError('FAILED_PRECONDITION', 'staging_target_path is required: this plugin stages volumes (STAGE_UNSTAGE_VOLUME), so NodeStageVolume must succeed first');
      }
      const stagingTargetPath = paths.require(request.staging_target_path, 'staging_target_path');
      const readOnly = request.readonly || isReadOnlyMode(request.volume_capability?.access_mode?.mode);

      return holdAll(inflight, [volumeId, pathKey(targetPath)], 'NodePublishVolume', async () => {
        // 0. Never through a link: the bind would land wherever it points (another pod's volume, a host directory).
        await paths.refuseLinks(targetPath, 'target_path');
        await paths.refuseLinks(stagingTargetPath, 'staging_target_path');

        // 1. The staged mount must be live and be this volume.
        const stagedState = await mounter.isMountPoint(stagingTargetPath);
        if (stagedState === 'not-mounted') {
          throw new CsiError('FAILED_PRECONDITION', `volume ${volumeId} is not staged at ${stagingTargetPath}; NodeStageVolume must succeed before NodePublishVolume`);
        }
        if (stagedState === 'corrupt') {
          throw new CsiError('FAILED_PRECONDITION', `the staged mount of volume ${volumeId} at ${stagingTargetPath} is dead (its granary mount exited; see its log); unstage and stage the volume again`);
        }
        const mounts = await mounter.listMounts();
        const staged = findMount(mounts, stagingTargetPath);
        if (!staged || !isGranaryMountOf(staged, location)) {
          throw new CsiError('FAILED_PRECONDITION', `${stagingTargetPath} holds ${describeMount(staged)}, not volume ${volumeId}; stage the volume there first`);
        }
        if (!readOnly && isReadOnlyMount(staged)) {
          throw new CsiError('FAILED_PRECONDITION', `volume ${volumeId} is staged read-only (a reader-only access mode) and cannot be published read-write`);
        }

        // 2. Already published here?
        const targetState = await mounter.isMountPoint(targetPath);
        if (targetState === 'mounted') {
          const published = findMount(mounts, targetPath);
          if (published && published.device === staged.device && published.root === staged.root) {
            // Spec: "If the volume corresponding to the volume_id has already been published at the specified target_path,
            // and is compatible with the specified volume_capability and readonly flag, the Plugin MUST reply 0 OK."
            if (isReadOnlyMount(published) === readOnly) return {};
            // Spec (NodePublishVolume errors): "Volume published but is incompatible | 6 ALREADY_EXISTS | ... incompatible
            // with the specified volume_capability or readonly flag."
            throw new CsiError('ALREADY_EXISTS', `volume ${volumeId} is already published at ${targetPath} ${isReadOnlyMount(published) ? 'read-only' : 'read-write'}, not ${readOnly ? 'read-only' : 'read-write'} as requested; unpublish it first`);
          }
          throw new CsiError('ALREADY_EXISTS', `target_path ${targetPath} already holds another mount (${describeMount(published)}); unpublish it first`);
        }
        // A dead bind left from an earlier staging of the volume: drop it and bind the live one.
        if (targetState === 'corrupt') await mounter.unmount(targetPath);

        // 3. "Creation of target_path is the responsibility of the SP."
        const created = await ensureDirectory(targetPath);

        // 4. Bind the staged mount; read-only when the request or the access mode says so. On failure, undo step 3.
        try {
          await mounter.bindMount(stagingTargetPath, targetPath, readOnly);
        } catch (error) {
          if (created) await removeDirectory(targetPath).catch(() => undefined);
          throw error;
        }
        log.info({ stagingTargetPath, targetPath, readOnly }, `volume published into the pod ${readOnly ? 'read-only' : 'read-write'}`);
        return {};
      });
    },

    NodeUnpublishVolume: async (request, { log }) => {
      parseVolumeId(request.volume_id);
      const volumeId = request.volume_id;
      const targetPath = paths.require(request.target_path, 'target_path');

      return holdAll(inflight, [volumeId, pathKey(targetPath)], 'NodeUnpublishVolume', async () => {
        // 0. A link where the target directory was (see removeLink): nothing is unmounted or deleted through it.
        const link = await paths.findLink(targetPath);
        if (link) {
          if (link.final) await removeLink(targetPath, log);
          else log.warn({ targetPath, link: link.link, pointsTo: link.pointsTo }, 'target_path goes through a symbolic link; nothing published can be reached through it, so nothing is unmounted');
          return {};
        }

        // 1. Unmount, live or dead; a target that is not a mount point (or does not exist) is already unpublished.
        if ((await mounter.isMountPoint(targetPath)) !== 'not-mounted') await mounter.unmount(targetPath);
        // 2. "The SP MUST delete the file or directory it created at this path."
        await removeDirectory(targetPath);
        return {};
      });
    },

    NodeGetCapabilities: async () => ({
      // VOLUME_CONDITION: kubelet turns an abnormal condition (a dead mount process) into an event on the pod.
      capabilities: [{ rpc: { type: 'STAGE_UNSTAGE_VOLUME' } }, { rpc: { type: 'GET_VOLUME_STATS' } }, { rpc: { type: 'VOLUME_CONDITION' } }],
    }),

    NodeGetVolumeStats: async (request) => {
      const location = parseVolumeId(request.volume_id);
      if (!request.volume_path) throw new CsiError('INVALID_ARGUMENT', 'volume_path is required');
      const volumePath = path.resolve(request.volume_path);
      const mount = findMount(await mounter.listMounts(), volumePath);
      // Spec: "Volume does not exist or is not mounted at the specified path: NOT_FOUND".
      if (!mount || mount.mountPoint !== volumePath || !isGranaryMountOf(mount, location)) {
        throw new CsiError('NOT_FOUND', `volume ${request.volume_id} is not mounted at ${volumePath}`);
      }
      if ((await mounter.isMountPoint(volumePath)) === 'corrupt') {
        const record = mountProcesses.describe(request.volume_id);
        return {
          usage: [],
          volume_condition: {
            abnormal: true,
            message: `the granary mount serving ${request.volume_id} is gone (ENOTCONN); restart the pod to restage the volume${record ? `; see ${record.logHint}` : ''}`,
          },
        };
      }
      return { usage: volumeUsage(await statfs(volumePath)), volume_condition: { abnormal: false, message: 'mounted' } };
    },

    NodeGetInfo: async () => ({ node_id: deps.nodeId, max_volumes_per_node: maxVolumesPerNode }),
  };
}
