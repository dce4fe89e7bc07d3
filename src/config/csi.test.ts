import { cacheEnabled } from './cache';
import { parseCsiConfig } from './csi';

describe('CSI configuration', () => {
  it('has documented defaults, with no cluster cache', () => {
    const config = parseCsiConfig({ mode: 'node', nodeId: 'node-a' });
    expect(config).toMatchObject({ endpoint: 'unix:///csi/csi.sock', kubeletDir: '/var/lib/kubelet', stateDir: '/var/lib/granary/mounts', mountReadyTimeoutMs: 30_000, maxVolumesPerNode: 0, logLevel: 'info' });
    expect(cacheEnabled(config.cache)).toBe(false);
  });

  it('takes the cluster cache of the node', () => {
    const config = parseCsiConfig({ mode: 'node', nodeId: 'node-a', cache: { peers: ['http://10.0.0.5:7070'], tokenFile: '/var/run/granary/token' } });
    expect(config.cache).toMatchObject({ peers: ['http://10.0.0.5:7070'], tokenFile: '/var/run/granary/token', blockSize: 4 * 1024 * 1024 });
    expect(cacheEnabled(config.cache)).toBe(true);
  });

  it.each([
    ['peers without a token file', { peers: ['http://10.0.0.5:7070'] }, /cache\.tokenFile: --cache-token-file is required with --cache-peers or --cache-kubernetes-service/],
    ['a Service without a token file', { kubernetesService: 'granary-cache' }, /--cache-token-file is required/],
    ['both peers and a Service', { peers: ['http://10.0.0.5:7070'], kubernetesService: 'granary-cache', tokenFile: '/t' }, /give --cache-peers or --cache-kubernetes-service, not both/],
    ['a block size below the minimum', { peers: ['http://10.0.0.5:7070'], tokenFile: '/t', blockSize: 1 }, /cache\.blockSize/],
  ])('refuses %s', (_, cache, message) => {
    expect(() => parseCsiConfig({ mode: 'node', nodeId: 'node-a', cache })).toThrow(message);
  });

  it('takes the kubelet directory, which must be absolute', () => {
    expect(parseCsiConfig({ mode: 'node', nodeId: 'node-a', kubeletDir: '/var/snap/microk8s/common/var/lib/kubelet' }).kubeletDir).toBe('/var/snap/microk8s/common/var/lib/kubelet');
    expect(() => parseCsiConfig({ mode: 'node', nodeId: 'node-a', kubeletDir: 'var/lib/kubelet' })).toThrow(/kubeletDir: --kubelet-dir must be an absolute path/);
  });

  it('requires the node ID in node mode', () => {
    expect(() => parseCsiConfig({ mode: 'all' })).toThrow(/--node-id is required in node and all modes/);
  });
});
