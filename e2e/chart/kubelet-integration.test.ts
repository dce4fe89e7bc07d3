// Node registration and liveness in the chart (kubeletIntegration): builtin, where granary csi serves the kubelet's
// registration socket and /healthz itself, and sidecars, where node-driver-registrar and livenessprobe do. Each
// render is checked for what the kubelet will meet: the containers, the flags, the host paths behind them and the
// probe's port, and is validated like every other render.
import * as path from 'node:path';
import { parseCsiConfig } from '../../src/config/csi';
import { kubeValidateRenders, parseObjects, podSpec, render, type KubeObject } from './chart';

interface ProbedContainer {
  name: string;
  args?: string[];
  ports?: Array<{ name: string; containerPort: number }>;
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}

interface PodSpec {
  containers: ProbedContainer[];
  volumes: Array<{ name: string; hostPath?: { path: string; type?: string } }>;
}

/** The pod spec of the workload whose name ends with `suffix` (-node, -controller). */
function workload(objects: KubeObject[], kind: string, suffix: string): PodSpec {
  const owner = objects.find((object) => object.kind === kind && object.metadata.name.endsWith(suffix));
  if (!owner) throw new Error(`no ${kind} *${suffix} rendered`);
  return podSpec(owner) as unknown as PodSpec;
}

const nodePod = (objects: KubeObject[]): PodSpec => workload(objects, 'DaemonSet', '-node');
const controllerPod = (objects: KubeObject[]): PodSpec => workload(objects, 'Deployment', '-controller');

function container(pod: PodSpec, name: string): ProbedContainer {
  const found = pod.containers.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no container ${name}: ${pod.containers.map((c) => c.name).join(', ')}`);
  return found;
}

/** The value of --NAME=VALUE in a container's args. */
function flag(of: ProbedContainer, name: string): string | undefined {
  return of.args?.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/** The host path a container path lies on, through the container's hostPath mounts (the longest mountPath wins). */
function hostPathOf(pod: PodSpec, of: ProbedContainer, containerPath: string): string | undefined {
  const mounts = (of.volumeMounts ?? []).filter((mount) => containerPath === mount.mountPath || containerPath.startsWith(`${mount.mountPath}/`));
  const mount = mounts.sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const volume = pod.volumes.find((candidate) => candidate.name === mount?.name);
  if (!mount || !volume?.hostPath) return undefined;
  return path.posix.join(volume.hostPath.path, path.posix.relative(mount.mountPath, containerPath));
}

/** The port the granary container's liveness probe calls, as a number. */
function probedPort(of: ProbedContainer): number | undefined {
  const port = of.livenessProbe?.httpGet?.port;
  return typeof port === 'number' ? port : of.ports?.find((candidate) => candidate.name === port)?.containerPort;
}

describe('kubeletIntegration: builtin (the default)', () => {
  const objects = parseObjects(render([]));

  it('runs the node plugin without registrar or livenessprobe sidecar, registering itself through the host plugins_registry', () => {
    const pod = nodePod(objects);
    expect(pod.containers.map((c) => c.name)).toEqual(['granary']);
    const granary = container(pod, 'granary');
    expect(granary.args).toContain('--register-with-kubelet');
    expect(flag(granary, 'registration-dir')).toBe('/registration');
    expect(hostPathOf(pod, granary, '/registration')).toBe('/var/lib/kubelet/plugins_registry');
    expect(pod.volumes.find((volume) => volume.name === 'registration-dir')?.hostPath).toEqual({ path: '/var/lib/kubelet/plugins_registry', type: 'Directory' });
    // What the kubelet is told is where the driver's own socket (--endpoint) lies on the host.
    const endpointSocket = flag(granary, 'endpoint')?.replace(/^unix:\/\//, '') ?? '';
    expect(flag(granary, 'kubelet-registration-path')).toBe('/var/lib/kubelet/plugins/csi.granary.dev/csi.sock');
    expect(hostPathOf(pod, granary, endpointSocket)).toBe(flag(granary, 'kubelet-registration-path'));
    const config = parseCsiConfig({
      mode: 'node', nodeId: 'n', endpoint: flag(granary, 'endpoint'), kubeletDir: flag(granary, 'kubelet-dir'), registerWithKubelet: true,
      registrationDir: flag(granary, 'registration-dir'), kubeletRegistrationPath: flag(granary, 'kubelet-registration-path'), healthListen: flag(granary, 'health-listen'),
    });
    expect(config.registerWithKubelet).toBe(true);
  });

  it('probes the liveness of the node plugin and the controller on the port granary csi serves /healthz on', () => {
    for (const pod of [nodePod(objects), controllerPod(objects)]) {
      const granary = container(pod, 'granary');
      expect(granary.livenessProbe?.httpGet?.path).toBe('/healthz');
      expect(flag(granary, 'health-listen')).toBe(`0.0.0.0:${probedPort(granary)}`);
      expect(pod.containers.map((c) => c.name)).not.toContain('liveness-probe');
    }
    expect(controllerPod(objects).containers.map((c) => c.name)).toEqual(['granary', 'csi-provisioner']);
  });

  it('follows a moved kubelet directory with the registration directory and the registration path', () => {
    const pod = nodePod(parseObjects(render([], ['node.kubeletDir=/var/snap/microk8s/common/var/lib/kubelet'])));
    const granary = container(pod, 'granary');
    expect(hostPathOf(pod, granary, '/registration')).toBe('/var/snap/microk8s/common/var/lib/kubelet/plugins_registry');
    expect(flag(granary, 'kubelet-registration-path')).toBe('/var/snap/microk8s/common/var/lib/kubelet/plugins/csi.granary.dev/csi.sock');
    expect(hostPathOf(pod, granary, '/csi/csi.sock')).toBe(flag(granary, 'kubelet-registration-path'));
  });
});

describe('kubeletIntegration: sidecars', () => {
  const objects = parseObjects(render([], ['kubeletIntegration=sidecars']));

  it('runs node-driver-registrar and livenessprobe beside a node plugin that neither registers nor serves /healthz', () => {
    const pod = nodePod(objects);
    expect(pod.containers.map((c) => c.name)).toEqual(['granary', 'node-driver-registrar', 'liveness-probe']);
    const granary = container(pod, 'granary');
    expect(granary.args?.filter((arg) => /^--(register-with-kubelet|registration-dir|kubelet-registration-path|health-listen)/.test(arg))).toEqual([]);
    const registrar = container(pod, 'node-driver-registrar');
    expect(flag(registrar, 'kubelet-registration-path')).toBe(hostPathOf(pod, granary, '/csi/csi.sock'));
    expect(hostPathOf(pod, registrar, '/registration')).toBe('/var/lib/kubelet/plugins_registry');
  });

  it('probes the node plugin and the controller on the livenessprobe sidecar\'s port', () => {
    for (const pod of [nodePod(objects), controllerPod(objects)]) {
      expect(flag(container(pod, 'liveness-probe'), 'health-port')).toBe(String(probedPort(container(pod, 'granary'))));
    }
    expect(controllerPod(objects).containers.map((c) => c.name)).toEqual(['granary', 'csi-provisioner', 'liveness-probe']);
  });
});

describe('livenessProbe: false', () => {
  it.each(['builtin', 'sidecars'])('removes the probe, the health endpoint and the livenessprobe sidecar with %s, keeping the registration', (mode) => {
    const objects = parseObjects(render([], [`kubeletIntegration=${mode}`, 'node.livenessProbe=false', 'controller.livenessProbe=false']));
    for (const pod of [nodePod(objects), controllerPod(objects)]) {
      const granary = container(pod, 'granary');
      // The node plugin keeps its metrics port (metrics.node), not the health one.
      const ports = granary.ports?.map((port) => port.name);
      expect({ probe: granary.livenessProbe, healthPort: ports?.includes('healthz') ?? false, healthListen: flag(granary, 'health-listen') }).toEqual({ probe: undefined, healthPort: false, healthListen: undefined });
      expect(pod.containers.map((c) => c.name)).not.toContain('liveness-probe');
    }
    const registers = mode === 'builtin' ? container(nodePod(objects), 'granary').args?.includes('--register-with-kubelet') : nodePod(objects).containers.some((c) => c.name === 'node-driver-registrar');
    expect(registers).toBe(true);
  });

  it('passes API validation in every combination', () => {
    const renders = ['builtin', 'sidecars'].flatMap((mode) =>
      ['true', 'false'].map((probe) => ({ name: `${mode}-${probe}`, files: [], set: [`kubeletIntegration=${mode}`, `node.livenessProbe=${probe}`, `controller.livenessProbe=${probe}`] })),
    );
    const result = kubeValidateRenders(renders);
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });
});

describe('metrics of the node plugin (metrics.node) and scrape annotations', () => {
  type Annotated = KubeObject & { spec: { template: { metadata: { annotations?: Record<string, string> } } } };
  const annotations = (objects: KubeObject[], kind: string, suffix: string): Record<string, string> | undefined =>
    (objects.find((object) => object.kind === kind && object.metadata.name.endsWith(suffix)) as Annotated).spec.template.metadata.annotations;

  it('serves /metrics on the port the node plugin pod names and annotates, as do the cache pods on theirs', () => {
    const objects = parseObjects(render([]));
    const granary = container(nodePod(objects), 'granary');
    const port = granary.ports?.find((candidate) => candidate.name === 'metrics')?.containerPort;
    expect(flag(granary, 'metrics-listen')).toBe(`0.0.0.0:${port}`);
    expect(parseCsiConfig({ mode: 'node', nodeId: 'n', metricsListen: flag(granary, 'metrics-listen') }).metricsListen).toBe(`0.0.0.0:${port}`);
    expect(annotations(objects, 'DaemonSet', '-node')).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' });
    expect(annotations(objects, 'DaemonSet', '-cache')).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '7070', 'prometheus.io/path': '/metrics' });
  });

  it('serves and annotates nothing when turned off', () => {
    const objects = parseObjects(render([], ['metrics.node.enabled=false', 'metrics.scrapeAnnotations=false']));
    const granary = container(nodePod(objects), 'granary');
    expect({ flag: flag(granary, 'metrics-listen'), ports: granary.ports?.map((candidate) => candidate.name) }).toEqual({ flag: undefined, ports: ['healthz'] });
    expect([annotations(objects, 'DaemonSet', '-node'), annotations(objects, 'DaemonSet', '-cache')]).toEqual([undefined, undefined]);
  });
});
