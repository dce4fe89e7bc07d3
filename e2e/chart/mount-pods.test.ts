// Mount Pods in the chart (node.mounter): the node plugin's Role and the admission policy that narrows it
// to the Pods and Secrets it labels, the flags and environment the node DaemonSet hands granary csi, and the
// mount Pods' service account. The rendered policy's CEL is compiled by kube-validate (chart.test.ts).
import { defaultMountPodDir, parseCsiConfig } from '../../src/config/csi';
import { MANAGED_BY, MOUNT_POD_LABELS } from '../../src/csi/mount/mount-pod-spec';
import { toolPath } from '../support/tools';
import { CHART_DIR, helmTemplate, parseObjects, podSpec, render, RELEASE, run, type KubeObject } from './chart';

interface NodeContainer {
  name: string;
  image: string;
  args?: string[];
  env?: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  volumeMounts?: Array<{ name: string; mountPath: string; mountPropagation?: string }>;
}

function find(objects: KubeObject[], kind: string, suffix: string): KubeObject | undefined {
  return objects.find((object) => object.kind === kind && object.metadata.name.endsWith(suffix));
}

function nodeContainer(objects: KubeObject[]): NodeContainer {
  const daemonSet = find(objects, 'DaemonSet', '-node');
  const container = (podSpec(daemonSet!)?.containers as NodeContainer[] | undefined)?.find((candidate) => candidate.name === 'granary');
  if (!container) throw new Error('no granary container in the node DaemonSet');
  return container;
}

/** The value of --NAME=VALUE in args. */
function flag(args: string[] | undefined, name: string): string | undefined {
  return args?.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
}

const NODE_SERVICE_ACCOUNT = `system:serviceaccount:${RELEASE.namespace}:${RELEASE.name}-node`;

describe('mount Pods (node.mounter: pod, the default)', () => {
  const objects = parseObjects(render([]));

  it('runs granary csi with --mounter=pod, its own image, the mount service account and priority, and the namespace and node from the downward API', () => {
    const granary = nodeContainer(objects);
    expect(flag(granary.args, 'mounter')).toBe('pod');
    expect(flag(granary.args, 'mount-pod-image')).toBe(granary.image);
    expect(flag(granary.args, 'mount-pod-service-account')).toBe(`${RELEASE.name}-mount`);
    expect(flag(granary.args, 'mount-pod-priority-class')).toBe('system-node-critical');
    expect(flag(granary.args, 'mount-pod-grace-period')).toBe('30');
    expect(granary.env).toEqual(expect.arrayContaining([
      { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    ]));
    expect(flag(granary.args, 'node-id')).toBe('$(NODE_NAME)');
    // The mount Pods mount below the kubelet's directory, which the node plugin sees through its Bidirectional mount.
    const kubeletDir = flag(granary.args, 'kubelet-dir') ?? '';
    expect(granary.volumeMounts).toContainEqual({ name: 'kubelet-dir', mountPath: kubeletDir, mountPropagation: 'Bidirectional' });
    const config = parseCsiConfig({
      mode: 'node', nodeId: 'n', kubeletDir, mounter: 'pod', mountPodImage: flag(granary.args, 'mount-pod-image'), mountPodNamespace: RELEASE.namespace,
      mountPodGracePeriodSeconds: Number(flag(granary.args, 'mount-pod-grace-period')),
    });
    expect(config.mountPodDir).toBe(defaultMountPodDir(kubeletDir));
    expect(config.mountPodDir.startsWith(`${kubeletDir}/`)).toBe(true);
  });

  it('rolls the node plugin with RollingUpdate: the mounts outlive its pods', () => {
    expect((find(objects, 'DaemonSet', '-node')?.spec as { updateStrategy: unknown }).updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  });

  it('gives the node plugin a Role in the release namespace to manage Pods and Secrets, bound to its service account only', () => {
    const role = find(objects, 'Role', '-node-mounts');
    expect(role?.metadata.namespace).toBe(RELEASE.namespace);
    expect(role?.rules).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'delete'] },
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      // Never get: that would read every Secret of the namespace, and no admission policy sees reads.
      { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'delete'] },
    ]);
    const binding = find(objects, 'RoleBinding', '-node-mounts');
    expect(binding).toMatchObject({ roleRef: { kind: 'Role', name: role?.metadata.name }, subjects: [{ kind: 'ServiceAccount', name: `${RELEASE.name}-node`, namespace: RELEASE.namespace }] });
    expect(objects.filter((object) => object.kind === 'ClusterRoleBinding' && JSON.stringify(object.subjects).includes(`${RELEASE.name}-node"`))).toEqual([]);
  });

  it('denies the node plugin creating or deleting Pods and Secrets without its label, and Pods on another node', () => {
    const policy = find(objects, 'ValidatingAdmissionPolicy', '-node-mounts');
    const spec = policy?.spec as {
      failurePolicy: string;
      matchConstraints: { resourceRules: unknown[] };
      matchConditions: Array<{ expression: string }>;
      validations: Array<{ expression: string }>;
      variables: Array<{ name: string; expression: string }>;
    };
    expect(policy?.apiVersion).toBe('admissionregistration.k8s.io/v1');
    expect(spec.failurePolicy).toBe('Fail');
    expect(spec.matchConstraints.resourceRules).toEqual([{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'DELETE'], resources: ['pods', 'secrets'] }]);
    expect(spec.matchConditions).toEqual([{ name: 'by-the-node-plugin', expression: `request.userInfo.username == '${NODE_SERVICE_ACCOUNT}'` }]);
    // The label the code puts on every mount Pod and Secret is the one the policy demands.
    expect(spec.validations[0]?.expression).toContain(`variables.target.metadata.labels['${MOUNT_POD_LABELS.managedBy}'] == '${MANAGED_BY}'`);
    expect(spec.variables.find((variable) => variable.name === 'target')?.expression).toBe("request.operation == 'DELETE' ? oldObject : object");
    expect(spec.variables.find((variable) => variable.name === 'tokenNode')?.expression).toContain("request.userInfo.extra['authentication.kubernetes.io/node-name']");
    expect(spec.validations[1]?.expression).toContain('object.spec.nodeName in variables.tokenNode');

    const binding = find(objects, 'ValidatingAdmissionPolicyBinding', '-node-mounts');
    expect(binding?.spec).toEqual({
      policyName: policy?.metadata.name,
      validationActions: ['Deny'],
      matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': RELEASE.namespace } } },
    });
  });

  it('gives mount Pods a service account of their own that may only find the cache servers', () => {
    expect(find(objects, 'ServiceAccount', '-mount')?.metadata.name).toBe(`${RELEASE.name}-mount`);
    const subjects = (find(objects, 'RoleBinding', '-cache-discovery')?.subjects ?? []) as Array<{ name: string }>;
    expect(subjects.map((subject) => subject.name)).toContain(`${RELEASE.name}-mount`);
    expect(objects.filter((object) => JSON.stringify((object as { subjects?: unknown }).subjects ?? []).includes(`${RELEASE.name}-mount"`)).map((object) => object.metadata.name)).toEqual([`${RELEASE.name}-cache-discovery`]);
  });

  it('refuses to render the admission policy for Kubernetes before 1.30, saying how to go on', () => {
    const old = run(toolPath('helm'), ['template', RELEASE.name, CHART_DIR, '--namespace', RELEASE.namespace, '--kube-version', '1.29.0']);
    expect(old.status).not.toBe(0);
    expect(old.stderr).toContain('node.mountPods.admissionPolicy needs Kubernetes 1.30 or later');
    const withoutPolicy = run(toolPath('helm'), ['template', RELEASE.name, CHART_DIR, '--namespace', RELEASE.namespace, '--kube-version', '1.29.0', '--set', 'node.mountPods.admissionPolicy=false']);
    expect(withoutPolicy.status).toBe(0);
  });
});

describe('mount processes (node.mounter: process)', () => {
  it('renders no Role, policy or mount service account, and passes --mounter=process', () => {
    const objects = parseObjects(render([], ['node.mounter=process', 'node.updateStrategy=OnDelete']));
    expect(objects.filter((object) => object.metadata.name.includes('-mount'))).toEqual([]);
    const granary = nodeContainer(objects);
    expect(flag(granary.args, 'mounter')).toBe('process');
    expect(granary.args?.some((arg) => arg.startsWith('--mount-pod-'))).toBe(false);
    expect((find(objects, 'DaemonSet', '-node')?.spec as { updateStrategy: unknown }).updateStrategy).toEqual({ type: 'OnDelete' });
  });

  it('keeps the Role but drops the policy when node.mountPods.admissionPolicy is false (Kubernetes before 1.30)', () => {
    const objects = parseObjects(render([], ['node.mountPods.admissionPolicy=false']));
    expect(find(objects, 'Role', '-node-mounts')).toBeDefined();
    expect(objects.filter((object) => object.kind.startsWith('ValidatingAdmissionPolicy'))).toEqual([]);
  });

  it('refuses an unknown mounter, naming the value', () => {
    const result = helmTemplate([], ['node.mounter=thread']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("at '/node/mounter': value must be one of");
  });
});
