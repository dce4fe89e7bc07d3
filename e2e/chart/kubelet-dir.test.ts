// The node plugin mounts only below the kubelet's directory (granary csi --kubelet-dir): the chart must
// pass the very directory it mounts from the host, or every NodeStage on a moved kubelet would be refused.
import { parseCsiConfig } from '../../src/config/csi';
import { containers, parseObjects, render, type KubeObject } from './chart';

interface NodePodSpec {
  containers: Array<{ name: string; args?: string[]; volumeMounts?: Array<{ name: string; mountPath: string; mountPropagation?: string }> }>;
  volumes: Array<{ name: string; hostPath?: { path: string } }>;
}

/** The node DaemonSet's --kubelet-dir, the kubelet-dir hostPath and where the granary container mounts it. */
function kubeletDirs(objects: KubeObject[]): { flag: string | undefined; hostPath: string | undefined; mountPath: string | undefined; propagation: string | undefined } {
  const owner = containers(objects).find(({ owner, container }) => owner.kind === 'DaemonSet' && owner.metadata.name.endsWith('-node') && container.name === 'granary')?.owner;
  const spec = (owner?.spec as { template: { spec: NodePodSpec } } | undefined)?.template.spec;
  const granary = spec?.containers.find((container) => container.name === 'granary');
  const flag = granary?.args?.find((arg) => arg.startsWith('--kubelet-dir='))?.slice('--kubelet-dir='.length);
  const mount = granary?.volumeMounts?.find((volumeMount) => volumeMount.name === 'kubelet-dir');
  return { flag, hostPath: spec?.volumes.find((volume) => volume.name === 'kubelet-dir')?.hostPath?.path, mountPath: mount?.mountPath, propagation: mount?.mountPropagation };
}

describe('the node plugin is told the kubelet directory it mounts', () => {
  it.each([
    ['the default', [], '/var/lib/kubelet'],
    ['a moved kubelet (microk8s)', ['node.kubeletDir=/var/snap/microk8s/common/var/lib/kubelet/'], '/var/snap/microk8s/common/var/lib/kubelet'],
  ])('passes --kubelet-dir equal to the kubelet-dir hostPath and mountPath with %s', (_, set, expected) => {
    const dirs = kubeletDirs(parseObjects(render([], set)));
    expect(dirs).toEqual({ flag: expected, hostPath: expected, mountPath: expected, propagation: 'Bidirectional' });
    expect(parseCsiConfig({ mode: 'node', nodeId: 'n', kubeletDir: dirs.flag }).kubeletDir).toBe(expected);
  });
});
