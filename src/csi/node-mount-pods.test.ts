// The node service over mount Pods: a volume staged by one node plugin stays mounted across a restart,
// the next plugin adopts its Pod (a repeated stage is answered from it, unstage deletes it), and a Pod
// that died meanwhile is cleaned up and the volume staged again in a new one.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { silentLogger } from '../log/logger';
import { FakeMounter } from './mount/fake';
import { FakePodApi } from './mount/fake-pod-api';
import { mountPodPaths } from './mount/mount-pod-spec';
import { MountPods } from './mount/mount-pods';
import { createNodeService, type NodeService } from './node';

const log = silentLogger();
const context = { log };
const VOLUME = 'bucket-one/team/data';
const capability = { mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_type: 'mount' as const, access_mode: { mode: 'MULTI_NODE_READER_ONLY' as never } };

describe('Node service with mount Pods', () => {
  let dir: string;
  let staging: string;
  let target: string;
  let api: FakePodApi;
  let mounter: FakeMounter;

  const podDir = () => path.join(dir, 'plugins', 'csi.granary.dev', 'mounts');
  const mountPoint = () => mountPodPaths(podDir(), path.join(dir, 'state'), VOLUME).mountPoint;

  /** A node plugin as `granary csi --mounter pod` builds it: adoption first, then the node service. */
  async function startPlugin(): Promise<{ node: NodeService; pods: MountPods }> {
    const pods = new MountPods({
      api,
      mounter,
      template: { image: 'granary:1', nodeName: 'node-a', priorityClassName: 'system-node-critical', terminationGracePeriodSeconds: 0 },
      podDir: podDir(),
      stateDir: path.join(dir, 'state'),
      pollMs: 5,
      unmountMarginMs: 20,
      baseEnvironment: {},
    });
    await pods.adopt(log);
    return { node: createNodeService({ kubeletDir: dir, nodeId: 'node-a', mounter, mountProcesses: pods }), pods };
  }

  const stage = (node: NodeService) =>
    node.NodeStageVolume({ volume_id: VOLUME, publish_context: {}, staging_target_path: staging, volume_capability: capability, secrets: { accessKeyID: 'AKID', secretAccessKey: 'SECRET' }, volume_context: {} }, context);
  const unstage = (node: NodeService) => node.NodeUnstageVolume({ volume_id: VOLUME, staging_target_path: staging }, context);
  const publish = (node: NodeService) =>
    node.NodePublishVolume({ volume_id: VOLUME, publish_context: {}, staging_target_path: staging, target_path: target, volume_capability: capability, readonly: true, secrets: {}, volume_context: {} }, context);

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-node-pods-'));
    staging = path.join(dir, 'staging');
    target = path.join(dir, 'pods', 'p1', 'mount');
    fs.mkdirSync(staging);
    api = new FakePodApi('granary');
    mounter = new FakeMounter();
    // The kubelet and granary mount: the Pod runs and mounts; deleted, it unmounts.
    api.onCreatePod = (pod: V1Pod) => {
      mounter.add({ source: 's3://bucket-one/team/data/', target: mountPoint(), fsType: 'fuse.granary', readOnly: true });
      api.setStatus(pod.metadata?.name ?? '', { phase: 'Running' });
    };
    api.onDeletePod = () => void mounter.unmount(mountPoint());
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a staged volume across a node plugin restart: the new plugin adopts the Pod, a repeated stage is OK, unstage deletes it', async () => {
    const first = await startPlugin();
    await stage(first.node);
    await publish(first.node);
    expect(api.pods.size).toBe(1);
    const podName = [...api.pods.keys()][0];

    // The node plugin restarts: nothing is unmounted, the Pod is still there.
    const second = await startPlugin();
    expect(second.pods.describe(VOLUME)).toMatchObject({ stagingTargetPath: staging, readOnly: true });
    await stage(second.node);
    expect([...api.pods.keys()]).toEqual([podName]);
    expect(await mounter.isMountPoint(target)).toBe('mounted');

    await second.node.NodeUnpublishVolume({ volume_id: VOLUME, target_path: target }, context);
    await unstage(second.node);
    expect(api.pods.size).toBe(0);
    expect(api.secrets.size).toBe(0);
    expect(await mounter.isMountPoint(staging)).toBe('not-mounted');
    expect(await mounter.isMountPoint(mountPoint())).toBe('not-mounted');
  });

  it('cleans up a Pod that died while no plugin ran, and stages the volume again in a new Pod', async () => {
    const first = await startPlugin();
    await stage(first.node);
    const [deadPod] = [...api.pods.keys()];
    mounter.markCorrupt(mountPoint());
    api.setStatus(deadPod ?? '', { phase: 'Failed' });

    const second = await startPlugin();
    expect(api.pods.has(deadPod ?? '')).toBe(false);
    expect(second.pods.describe(VOLUME)).toBeUndefined();
    // The kubelet's retry: the staging path is a dead bind, which is cleared and staged afresh.
    expect(await mounter.isMountPoint(staging)).toBe('corrupt');
    await stage(second.node);
    expect(api.pods.size).toBe(1);
    expect([...api.pods.keys()][0]).not.toBe(deadPod);
    expect(await mounter.isMountPoint(staging)).toBe('mounted');
  });

  it('stages again in a new Pod when the mount Pod of a staged volume dies', async () => {
    const { node } = await startPlugin();
    await stage(node);
    const [firstPod] = [...api.pods.keys()];
    mounter.markCorrupt(mountPoint());
    await stage(node);
    expect(api.pods.has(firstPod ?? '')).toBe(false);
    expect(api.pods.size).toBe(1);
    expect(await mounter.isMountPoint(staging)).toBe('mounted');
  });
});
