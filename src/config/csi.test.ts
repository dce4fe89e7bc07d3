import { cacheEnabled } from './cache';
import { parseCsiConfig } from './csi';

describe('CSI configuration', () => {
  it('has documented defaults, with no cluster cache', () => {
    const config = parseCsiConfig({ mode: 'node', nodeId: 'node-a' });
    expect(config).toMatchObject({ endpoint: 'unix:///csi/csi.sock', kubeletDir: '/var/lib/kubelet', stateDir: '/var/lib/granary/mounts', mountReadyTimeoutMs: 30_000, maxVolumesPerNode: 0, logLevel: 'info' });
    expect(cacheEnabled(config.cache)).toBe(false);
  });

  it('registers with no kubelet and serves no health endpoint unless asked, with registration paths below the kubelet directory', () => {
    const defaults = parseCsiConfig({ mode: 'node', nodeId: 'node-a' });
    expect(defaults).toMatchObject({
      registerWithKubelet: false,
      registrationDir: '/var/lib/kubelet/plugins_registry',
      kubeletRegistrationPath: '/var/lib/kubelet/plugins/csi.granary.dev/csi.sock',
      healthProbeTimeoutMs: 3000,
    });
    expect(defaults.healthListen).toBeUndefined();
    expect(parseCsiConfig({ mode: 'node', nodeId: 'node-a', registerWithKubelet: true, kubeletDir: '/var/snap/microk8s/common/var/lib/kubelet/' })).toMatchObject({
      registrationDir: '/var/snap/microk8s/common/var/lib/kubelet/plugins_registry',
      kubeletRegistrationPath: '/var/snap/microk8s/common/var/lib/kubelet/plugins/csi.granary.dev/csi.sock',
    });
    expect(parseCsiConfig({ mode: 'all', nodeId: 'node-a', registerWithKubelet: true, registrationDir: '/registration', kubeletRegistrationPath: '/host/csi.sock', healthListen: '[::]:9808' })).toMatchObject({
      registrationDir: '/registration',
      kubeletRegistrationPath: '/host/csi.sock',
      healthListen: '[::]:9808',
    });
    expect(parseCsiConfig({ mode: 'controller', healthListen: '0.0.0.0:9808', healthProbeTimeoutMs: 1000 })).toMatchObject({ healthListen: '0.0.0.0:9808', healthProbeTimeoutMs: 1000 });
  });

  it.each([
    ['registration in controller mode', { mode: 'controller', registerWithKubelet: true }, /registerWithKubelet: --register-with-kubelet is for node and all modes/],
    ['registration of a TCP endpoint', { mode: 'node', nodeId: 'n', registerWithKubelet: true, endpoint: 'tcp://127.0.0.1:10000' }, /endpoint: the kubelet calls CSI drivers only over a unix socket/],
    ['a registration directory without registration', { mode: 'node', nodeId: 'n', registrationDir: '/registration' }, /--registration-dir and --kubelet-registration-path take effect only with --register-with-kubelet/],
    ['a registration path without registration', { mode: 'node', nodeId: 'n', kubeletRegistrationPath: '/host/csi.sock' }, /take effect only with --register-with-kubelet/],
    ['a relative registration directory', { mode: 'node', nodeId: 'n', registerWithKubelet: true, registrationDir: 'plugins_registry' }, /registrationDir: --registration-dir must be an absolute path/],
    ['a relative registration path', { mode: 'node', nodeId: 'n', registerWithKubelet: true, kubeletRegistrationPath: 'csi.sock' }, /kubeletRegistrationPath: --kubelet-registration-path must be an absolute path/],
    ['a health address without a port', { mode: 'controller', healthListen: '0.0.0.0' }, /healthListen: write HOST:PORT, e.g. 0.0.0.0:9808/],
    ['a health port above 65535', { mode: 'controller', healthListen: '0.0.0.0:70000' }, /healthListen: the port must be at most 65535/],
    ['a probe timeout below 100 ms', { mode: 'controller', healthProbeTimeoutMs: 10 }, /healthProbeTimeoutMs/],
    ['a metrics address without a port', { mode: 'node', nodeId: 'n', metricsListen: '0.0.0.0' }, /metricsListen: write HOST:PORT, e.g. 0.0.0.0:9809/],
    ['a metrics socket of its own (each mount gets one)', { mode: 'node', nodeId: 'n', cache: { metricsSocket: '/run/m.sock' } }, /--cache-metrics-socket is a mount's/],
  ] as const)('refuses %s', (_, input, message) => {
    expect(() => parseCsiConfig(input)).toThrow(message);
  });

  it('serves metrics only when asked', () => {
    expect(parseCsiConfig({ mode: 'node', nodeId: 'n' }).metricsListen).toBeUndefined();
    expect(parseCsiConfig({ mode: 'node', nodeId: 'n', metricsListen: '0.0.0.0:9809' }).metricsListen).toBe('0.0.0.0:9809');
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

  it('runs mounts as child processes unless asked for mount Pods, which need an image and a namespace', () => {
    expect(parseCsiConfig({ mode: 'node', nodeId: 'node-a' })).toMatchObject({
      mounter: 'process',
      mountPodPriorityClass: 'system-node-critical',
      mountPodGracePeriodSeconds: 30,
      mountPodDir: '/var/lib/kubelet/plugins/csi.granary.dev/mounts',
    });
    expect(parseCsiConfig({ mode: 'node', nodeId: 'node-a', mounter: 'pod', mountPodImage: 'granary:1', mountPodNamespace: 'granary', kubeletDir: '/k/' })).toMatchObject({
      mounter: 'pod',
      mountPodDir: '/k/plugins/csi.granary.dev/mounts',
    });
    expect(() => parseCsiConfig({ mode: 'node', nodeId: 'node-a', mounter: 'pod', mountPodNamespace: 'granary' })).toThrow(/--mounter pod needs --mount-pod-image/);
    expect(() => parseCsiConfig({ mode: 'node', nodeId: 'node-a', mounter: 'pod', mountPodImage: 'granary:1' })).toThrow(/--mount-pod-namespace \(or \$POD_NAMESPACE\)/);
  });
});
