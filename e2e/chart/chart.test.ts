// The Helm chart and the plain manifests, checked offline: helm lint, the API server's own create
// validation of every rendered object (kube-validate), the values schema, manifests/ against a fresh
// render, and the chart against what the code serves (driver name, StorageClass parameters, secret keys).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DRIVER_NAME } from '../../src/csi/identity';
import { EXTRA_CREATE_METADATA, parseParameters, volumeLocation } from '../../src/csi/parameters';
import { SECRET_KEYS } from '../../src/csi/secrets';
import versions from '../tools/versions.json';
import { toolPath } from '../support/tools';
import {
  CHART_DIR, containers, exampleManifests, helmTemplate, kubeValidate, KUBE_VERSION, parseObjects, RELEASE, render, renderNotes, ROOT, run, valuesSets,
  type KubeObject,
} from './chart';

let workDir: string;
/** Every values set with its rendered text and objects, rendered once for all tests. */
let renders: Array<{ name: string; text: string; objects: KubeObject[] }>;

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-chart-'));
  renders = valuesSets().map((set) => {
    const text = render(set.files);
    return { name: set.name, text, objects: parseObjects(text) };
  });
});

afterAll(() => {
  fs.rmSync(workDir, { recursive: true, force: true });
});

function ofKind(objects: KubeObject[], kind: string): KubeObject[] {
  return objects.filter((object) => object.kind === kind);
}

describe('helm lint', () => {
  it.each(valuesSets().map((set) => [set.name, set] as const))('passes --strict with %s', (_name, set) => {
    const result = run(toolPath('helm'), ['lint', '--strict', CHART_DIR, '--namespace', RELEASE.namespace, '--kube-version', KUBE_VERSION, ...set.files.flatMap((file) => ['-f', file])]);
    expect({ status: result.status, output: result.stdout + result.stderr }).toMatchObject({ status: 0 });
    expect(result.stdout).toContain('0 chart(s) failed');
  });
});

describe('API validation (kube-validate: strict decoding, then the API server create strategy of each kind)', () => {
  it('accepts every object rendered with the default values and with every example values file', () => {
    const files = renders.map((rendered, index) => {
      const file = path.join(workDir, `render-${index}.yaml`);
      fs.writeFileSync(file, rendered.text);
      return file;
    });
    const result = kubeValidate(files, RELEASE.namespace);
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
    const total = renders.reduce((sum, rendered) => sum + rendered.objects.length, 0);
    expect(result.stderr).toContain(`${total} objects, 0 problems`);
  });

  it('accepts the example manifests (training, inference, warm-up)', () => {
    const files = exampleManifests();
    expect(files.map((file) => path.basename(file))).toEqual(['inference-deployment.yaml', 'training-job.yaml', 'warmup-job.yaml']);
    const result = kubeValidate(files);
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });

  it('rejects an unknown field, a selector that misses its template and a mount of a missing volume', () => {
    const file = path.join(workDir, 'broken.yaml');
    fs.writeFileSync(file, [
      'apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: typo, namespace: granary}',
      'spec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}',
      '    spec:\n      containers: [{name: c, image: i, mountPropogation: Bidirectional}]',
      '---',
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: wrong, namespace: granary}',
      'spec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: b}}',
      '    spec:\n      containers: [{name: c, image: i, volumeMounts: [{name: model, mountPath: /model}]}]',
    ].join('\n'));
    const result = kubeValidate([file]);
    expect(result.status).toBe(1);
    expect(result.stdout).toContain('unknown field "spec.template.spec.containers[0].mountPropogation"');
    expect(result.stdout).toContain('`selector` does not match template `labels`');
    expect(result.stdout).toContain('volumeMounts[0].name: Not found: "model"');
  });

  it('is built from the Kubernetes release versions.json names', () => {
    const goMod = fs.readFileSync(path.join(ROOT, versions['kube-validate'].source, 'go.mod'), 'utf8');
    expect(goMod).toMatch(new RegExp(`^\\s*k8s\\.io/kubernetes ${versions['kube-validate'].version.replace(/\./g, '\\.')}$`, 'm'));
  });
});

describe('values.schema.json', () => {
  it.each([
    ['cache.ram=lots', "at '/cache/ram': 'lots' does not match pattern"],
    ['storageClasses[0].bucket=Bad_Bucket', "at '/storageClasses/0/bucket': 'Bad_Bucket' does not match pattern"],
    ['controller.replicas=0', "at '/controller/replicas': minimum: got 0, want 1"],
    ['node.logLevel=loud', "at '/node/logLevel': value must be one of"],
    ['node.updateStrategy=Recreate', "at '/node/updateStrategy': value must be one of"],
    ['cache.rams=8GiB', "at '/cache': additional properties 'rams' not allowed"],
    ['secrets.endpoint=s3.example.com', "at '/secrets/endpoint': 's3.example.com' does not match pattern"],
    ['cache.buckets={models,Bad_Bucket}', "at '/cache/buckets/1': 'Bad_Bucket' does not match pattern"],
    ['cache.maxConnectionsPerAddress=0', "at '/cache/maxConnectionsPerAddress': minimum: got 0, want 1"],
    ['kubeletIntegration=sidecar', "at '/kubeletIntegration': value must be one of"],
    ['node.livenessProbe=maybe', "at '/node/livenessProbe': got string, want boolean"],
    ['controller.livenessProbe=1', "at '/controller/livenessProbe': got number, want boolean"],
  ])('refuses --set %s, naming the value', (pair, message) => {
    const result = helmTemplate([], [pair]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(message);
  });
});

describe('NOTES.txt', () => {
  it('shows how to create a first PVC of the first StorageClass, for every values set', () => {
    for (const set of valuesSets()) {
      const notes = renderNotes(set.files, workDir);
      const firstClass = ofKind(renders.find((rendered) => rendered.name === set.name)!.objects, 'StorageClass')[0];
      expect({ set: set.name, notes }).toEqual({ set: set.name, notes: expect.stringContaining('kind: PersistentVolumeClaim') });
      expect(notes).toContain(`storageClassName: ${firstClass?.metadata.name}`);
      expect(notes).not.toMatch(/<no value>|%!/);
    }
    expect(renderNotes([path.join(CHART_DIR, 'examples', 'kind.yaml')], workDir)).toContain('The cache runs on every node');
    expect(renderNotes([], workDir)).toContain('The cache runs on nodes matching {"nvidia.com/gpu.present":"true"}');
  });
});

describe('manifests/', () => {
  it('granary.yaml is the chart rendered with default values (run `npm run manifests` after changing the chart)', () => {
    const fresh = path.join(workDir, 'granary.yaml');
    const result = run('bash', [path.join(ROOT, 'e2e', 'chart', 'render-manifests.sh'), fresh]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const committed = fs.readFileSync(path.join(ROOT, 'manifests', 'granary.yaml'), 'utf8');
    expect(committed === fs.readFileSync(fresh, 'utf8')).toBe(true);
  });

  it('granary.yaml starts with its namespace and refers to the token Secret it asks the user to create', () => {
    const objects = parseObjects(fs.readFileSync(path.join(ROOT, 'manifests', 'granary.yaml'), 'utf8'));
    expect(objects[0]).toMatchObject({ kind: 'Namespace', metadata: { name: RELEASE.namespace } });
    expect(objects.filter((object) => object.kind === 'Secret').map((object) => object.metadata.name)).toEqual(['granary-s3']);
    const readme = fs.readFileSync(path.join(ROOT, 'manifests', 'README.md'), 'utf8');
    expect(readme).toContain('create secret generic granary-cache-token');
  });
});

describe('chart layout and consistency with the code', () => {
  it('renders one object per template file (storageclasses.yaml: one per entry)', () => {
    const withEverything = renders.find((rendered) => rendered.name === 'examples/on-prem-minio.yaml');
    expect(withEverything).toBeDefined();
    const perSource = new Map<string, number>();
    for (const document of withEverything!.text.split(/^---$/m)) {
      const source = /^# Source: (\S+)$/m.exec(document)?.[1];
      if (source && parseObjects(document).length > 0) perSource.set(source, (perSource.get(source) ?? 0) + 1);
    }
    expect(perSource.get('granary/templates/storageclasses.yaml')).toBe(3);
    perSource.delete('granary/templates/storageclasses.yaml');
    expect([...perSource.entries()].filter(([, count]) => count !== 1)).toEqual([]);
    // Every template file but the helpers and NOTES rendered here (all features are on in this example).
    const templates = fs.readdirSync(path.join(CHART_DIR, 'templates')).filter((file) => file.endsWith('.yaml'));
    expect([...perSource.keys()].map((source) => path.basename(source)).sort()).toEqual(templates.filter((file) => file !== 'storageclasses.yaml').sort());
  });

  it('names the driver the code serves, in the CSIDriver and every StorageClass', () => {
    for (const { objects } of renders) {
      expect(ofKind(objects, 'CSIDriver').map((object) => object.metadata.name)).toEqual([DRIVER_NAME]);
      for (const storageClass of ofKind(objects, 'StorageClass')) expect(storageClass.provisioner).toBe(DRIVER_NAME);
    }
  });

  it('gives StorageClass parameters the controller accepts, with the secrets every role needs', () => {
    let checked = 0;
    for (const { objects } of renders) {
      for (const storageClass of ofKind(objects, 'StorageClass')) {
        const parameters = storageClass.parameters as Record<string, string>;
        // What csi-provisioner --extra-create-metadata adds to CreateVolume.
        const request = { ...parameters, [EXTRA_CREATE_METADATA.pvcNamespace]: 'ml', [EXTRA_CREATE_METADATA.pvcName]: 'data', [EXTRA_CREATE_METADATA.pvName]: 'pvc-1' };
        expect(() => volumeLocation(parseParameters(request), 'pvc-1')).not.toThrow();
        for (const key of ['provisioner-secret-name', 'provisioner-secret-namespace', 'node-stage-secret-name', 'node-stage-secret-namespace']) {
          expect(parameters[`csi.storage.k8s.io/${key}`]).toBeTruthy();
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(renders.length);
  });

  it('turns the cache off everywhere when cache.enabled is false (no cache flags, StorageClasses with cache: false)', () => {
    const noCache = renders.find((rendered) => rendered.name === 'examples/no-cache.yaml')!;
    expect(ofKind(noCache.objects, 'StorageClass').map((storageClass) => (storageClass.parameters as Record<string, string>).cache)).toEqual(['false']);
    const node = containers(noCache.objects).find(({ owner, container }) => owner.kind === 'DaemonSet' && container.name === 'granary')?.container;
    expect(node?.args?.some((arg) => arg.startsWith('--cache-'))).toBe(false);
    expect(noCache.objects.filter((object) => object.metadata.name.includes('cache'))).toEqual([]);
  });

  it('puts a cache pod on every node of the kind example: its nodeSelector null clears the GPU selector ({} would be merged into it)', () => {
    const kind = renders.find((rendered) => rendered.name === 'examples/kind.yaml')!;
    const cache = ofKind(kind.objects, 'DaemonSet').find((daemonSet) => daemonSet.metadata.name.endsWith('-cache'));
    expect(cache).toBeDefined();
    expect((cache?.spec as { template: { spec: Record<string, unknown> } }).template.spec.nodeSelector).toBeUndefined();
  });

  it("writes only the secret keys src/csi/secrets.ts reads into the chart's S3 Secret", () => {
    const known = Object.values(SECRET_KEYS) as string[];
    const withKeys = renders.find((rendered) => rendered.name === 'examples/kind.yaml')!;
    const secret = withKeys.objects.find((object) => object.kind === 'Secret' && object.metadata.name.endsWith('-s3'));
    const keys = Object.keys((secret?.stringData ?? {}) as Record<string, string>);
    expect(keys.sort()).toEqual(['accessKeyID', 'endpoint', 'region', 'secretAccessKey']);
    expect(keys.filter((key) => !known.includes(key))).toEqual([]);
  });

  it('rolls node plugin pods one node at a time (their mount Pods outlive them), or replaces them only when deleted if asked', () => {
    const nodePlugin = (objects: KubeObject[]) => ofKind(objects, 'DaemonSet').find((daemonSet) => daemonSet.metadata.name.endsWith('-node'));
    for (const { name, objects } of renders) {
      expect({ name, strategy: (nodePlugin(objects)?.spec as { updateStrategy?: unknown })?.updateStrategy }).toEqual({ name, strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } } });
    }
    const onDelete = parseObjects(helmTemplate([], ['node.updateStrategy=OnDelete']).stdout);
    expect((nodePlugin(onDelete)?.spec as { updateStrategy?: unknown })?.updateStrategy).toEqual({ type: 'OnDelete' });
  });

  it('gives the cache server its connection caps, and --buckets only when cache.buckets names some', () => {
    const cacheArgs = (objects: KubeObject[]) => containers(objects).find(({ owner, container }) => owner.metadata.name.endsWith('-cache') && container.name === 'granary')?.container.args ?? [];
    const defaults = cacheArgs(renders.find((rendered) => rendered.name === 'default values')?.objects ?? []);
    expect(defaults).toEqual(expect.arrayContaining(['--max-connections=16384', '--max-connections-per-address=1024']));
    expect(defaults.some((arg) => arg.startsWith('--buckets'))).toBe(false);
    const restricted = cacheArgs(parseObjects(helmTemplate([], ['cache.buckets={models,datasets}', 'cache.maxConnections=30000', 'cache.maxConnectionsPerAddress=2048']).stdout));
    expect(restricted).toEqual(expect.arrayContaining(['--buckets=models,datasets', '--max-connections=30000', '--max-connections-per-address=2048']));
  });

  it('runs csi-provisioner with --extra-create-metadata and leader election', () => {
    for (const { objects } of renders) {
      const provisioner = containers(objects).find(({ container }) => container.name === 'csi-provisioner')?.container;
      expect(provisioner?.args).toEqual(expect.arrayContaining(['--extra-create-metadata', '--leader-election']));
    }
  });
});
