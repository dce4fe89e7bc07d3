// The cache's S3 endpoint in the chart (cache.s3Gateway): the node-local Service, the cache container's port, flags
// and access keys Secret (mounted read-only, never in args or env), what it renders without keys or when turned off,
// and the renders the chart refuses. The keys file the chart makes is read back with the gateway's own parser.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAccessKeys } from '../../src/cache/s3-gateway/access-keys';
import { CHART_DIR, helmTemplate, kubeValidateRenders, parseObjects, podSpec, render, renderNotes, type KubeObject } from './chart';

// Real processes (helm, kube-validate) start slowly on a loaded machine: no test here may fail on jest's 5 s default.
jest.setTimeout(60_000);

/** The example whose gateway keys the chart makes (keys.create); aws-existing-secret.yaml names a Secret instead. */
const ON_PREM = path.join(CHART_DIR, 'examples', 'on-prem-minio.yaml');
const EXISTING_SECRET = path.join(CHART_DIR, 'examples', 'aws-existing-secret.yaml');
/** A key the chart makes, for renders from the default values. */
const CREATE = 'cache.s3Gateway.keys.create.GRANARYMODELREADER01.grants={models,datasets/imagenet/}';
const KEYS_DIR = '/etc/granary/s3-keys';

interface CacheContainer {
  name: string;
  args: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  envFrom?: unknown[];
  ports: Array<{ name: string; containerPort: number; protocol?: string }>;
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean; subPath?: string }>;
}

interface CachePod {
  containers: CacheContainer[];
  initContainers?: CacheContainer[];
  volumes: Array<{ name: string; secret?: { secretName: string; items?: Array<{ key: string; path: string }> } }>;
}

interface ServiceSpec {
  type?: string;
  clusterIP?: string;
  internalTrafficPolicy?: string;
  selector: Record<string, string>;
  ports: Array<{ name: string; port: number; targetPort: string | number; protocol?: string }>;
}

function cacheDaemonSet(objects: KubeObject[]): KubeObject & { spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } } } {
  const found = objects.find((object) => object.kind === 'DaemonSet' && object.metadata.name === 'granary-cache');
  if (!found) throw new Error('no cache DaemonSet rendered');
  return found as ReturnType<typeof cacheDaemonSet>;
}

function cachePod(objects: KubeObject[]): CachePod {
  return podSpec(cacheDaemonSet(objects)) as unknown as CachePod;
}

function cacheServer(objects: KubeObject[]): CacheContainer {
  const found = cachePod(objects).containers.find((container) => container.name === 'granary');
  if (!found) throw new Error('no cache server container');
  return found;
}

function gatewayService(objects: KubeObject[]): (KubeObject & { spec: ServiceSpec }) | undefined {
  return objects.find((object) => object.kind === 'Service' && object.metadata.name === 'granary-s3') as (KubeObject & { spec: ServiceSpec }) | undefined;
}

function keysSecret(objects: KubeObject[]): (KubeObject & { stringData: Record<string, string> }) | undefined {
  return objects.find((object) => object.kind === 'Secret' && object.metadata.name === 'granary-s3-gateway-keys') as (KubeObject & { stringData: Record<string, string> }) | undefined;
}

/** Everything of the cache server's that the gateway adds: its flags, its port, its keys mount and volume. */
function gatewayParts(objects: KubeObject[]): { flags: string[]; ports: string[]; mounts: string[]; volumes: string[] } {
  const server = cacheServer(objects);
  return {
    flags: server.args.filter((arg) => arg.startsWith('--s3-')),
    ports: server.ports.filter((port) => port.name !== 'cache').map((port) => port.name),
    mounts: server.volumeMounts.filter((mount) => mount.mountPath.startsWith(KEYS_DIR)).map((mount) => mount.name),
    volumes: cachePod(objects).volumes.filter((volume) => volume.name === 's3-gateway-keys').map((volume) => volume.name),
  };
}

const NOTHING = { flags: [], ports: [], mounts: [], volumes: [] };

/**
 * Renders a copy of the chart whose lookup of the keys Secret finds `liveKeysJson` in it, as `helm upgrade` would
 * (`helm template` has no cluster to look in, so the chart itself finds nothing there).
 */
function renderWithLiveKeys(liveKeysJson: string, set: string[]): KubeObject[] {
  const copy = fs.mkdtempSync(path.join(workDir, 'chart-'));
  fs.cpSync(CHART_DIR, copy, { recursive: true });
  const template = path.join(copy, 'templates', 'cache-s3-gateway-keys-secret.yaml');
  const lookup = '{{- $existing := lookup "v1" "Secret" .Release.Namespace $name }}';
  const text = fs.readFileSync(template, 'utf8');
  if (!text.includes(lookup)) throw new Error(`${template} no longer has the line ${lookup}: change this test with it`);
  const live = Buffer.from(liveKeysJson).toString('base64');
  fs.writeFileSync(template, text.replace(lookup, `{{- $existing := dict "data" (dict "keys.json" "${live}") }}`));
  const result = helmTemplate([], set, copy);
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseObjects(result.stdout);
}

let workDir: string;

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-s3-gateway-'));
});

afterAll(() => {
  fs.rmSync(workDir, { recursive: true, force: true });
});

describe('the S3 endpoint with access keys (cache.s3Gateway.keys)', () => {
  it('is a ClusterIP Service granary-s3 on the cache pods, node-local, from port 9000 to the container port s3', () => {
    const objects = parseObjects(render([ON_PREM]));
    const service = gatewayService(objects);
    const daemonSet = cacheDaemonSet(objects);
    expect(service?.spec).toEqual({
      type: 'ClusterIP',
      internalTrafficPolicy: 'Local',
      selector: daemonSet.spec.selector.matchLabels,
      ports: [{ name: 's3', port: 9000, targetPort: 's3', protocol: 'TCP' }],
    });
    // The selector finds the cache pods, and nothing but them (the node plugin and mount pods are other components).
    expect(daemonSet.spec.template.metadata.labels).toMatchObject(service!.spec.selector);
    expect(service!.spec.selector['app.kubernetes.io/component']).toBe('cache');
    expect(cacheServer(objects).ports).toEqual([
      { name: 'cache', containerPort: 7070, protocol: 'TCP' },
      { name: 's3', containerPort: 9000, protocol: 'TCP' },
    ]);
    // Not the cache's headless Service, whose EndpointSlices are the ring; nor one the cache's ServiceMonitor selects.
    const monitor = objects.find((object) => object.kind === 'ServiceMonitor') as KubeObject & { spec: { selector: { matchLabels: Record<string, string> } } };
    expect(Object.entries(monitor.spec.selector.matchLabels).every(([label, value]) => service!.metadata.labels?.[label] === value)).toBe(false);
    expect(objects.filter((object) => object.kind === 'Service').map((object) => object.metadata.name).sort()).toEqual(['granary-cache', 'granary-s3']);
  });

  it('serves S3 on the pod port the Service targets, reads its keys from the mounted Secret, and keeps /healthz on the cache port', () => {
    const objects = parseObjects(render([ON_PREM]));
    const server = cacheServer(objects);
    expect(server.args.filter((arg) => arg.startsWith('--s3-'))).toEqual(['--s3-listen=0.0.0.0:9000', `--s3-keys-file=${KEYS_DIR}/keys.json`, '--s3-version-ttl=1000']);
    expect(server.volumeMounts.filter((mount) => mount.name === 's3-gateway-keys')).toEqual([{ name: 's3-gateway-keys', mountPath: KEYS_DIR, readOnly: true }]);
    expect(cachePod(objects).volumes.find((volume) => volume.name === 's3-gateway-keys')).toEqual({
      name: 's3-gateway-keys',
      secret: { secretName: 'granary-s3-gateway-keys', items: [{ key: 'keys.json', path: 'keys.json' }] },
    });
    const probes = server as unknown as { livenessProbe: { httpGet: { port: string } }; readinessProbe: { httpGet: { port: string } } };
    expect([probes.livenessProbe.httpGet.port, probes.readinessProbe.httpGet.port]).toEqual(['cache', 'cache']);
  });

  it('makes the keys file the gateway reads from keys.create, a secret generated for each key, in no arg or env of any pod', () => {
    const text = render([], [CREATE, 'cache.s3Gateway.keys.create.GRANARYDATASETS0001.grants={datasets}']);
    const objects = parseObjects(text);
    const keysJson = keysSecret(objects)?.stringData['keys.json'] ?? '';
    const keys = parseAccessKeys(keysJson, 'keys.json');
    expect(keys.size).toBe(2);
    expect(keys.grantsOf('GRANARYMODELREADER01')).toEqual([{ bucket: 'models', prefix: '' }, { bucket: 'datasets', prefix: 'imagenet/' }]);
    expect(keys.grantsOf('GRANARYDATASETS0001')).toEqual([{ bucket: 'datasets', prefix: '' }]);
    const secrets = (JSON.parse(keysJson) as { keys: Array<{ secretAccessKey: string }> }).keys.map((key) => key.secretAccessKey);
    for (const secret of secrets) expect(secret).toMatch(/^[A-Za-z0-9]{40}$/);
    expect(new Set(secrets).size).toBe(2);
    // The secrets are in the Secret only: not in any other object, so in no container's args or env.
    const elsewhere = text.split(/^---$/m).filter((document) => !document.includes('# Source: granary/templates/cache-s3-gateway-keys-secret.yaml'));
    for (const secret of secrets) expect(elsewhere.filter((document) => document.includes(secret))).toEqual([]);
    const server = cacheServer(objects);
    expect((server.env ?? []).filter((variable) => variable.valueFrom?.secretKeyRef?.name === 'granary-s3-gateway-keys')).toEqual([]);
    expect(server.envFrom).toBeUndefined();
  });

  it('keeps the secret the live Secret holds for a key without secretAccessKey, and drops the keys no longer listed', () => {
    const live = JSON.stringify({ keys: [
      { accessKeyId: 'GRANARYMODELREADER01', secretAccessKey: 'kept-secret-of-the-first-install-000000', grants: ['models'] },
      { accessKeyId: 'GRANARYREMOVED000001', secretAccessKey: 'secret-of-a-key-since-removed-000000000', grants: ['models'] },
    ] });
    const objects = renderWithLiveKeys(live, [CREATE, 'cache.s3Gateway.keys.create.GRANARYDATASETS0001.grants={datasets}']);
    const keys = parseAccessKeys(keysSecret(objects)?.stringData['keys.json'] ?? '', 'keys.json');
    expect(keys.size).toBe(2);
    expect(keys.secretOf('GRANARYMODELREADER01')).toBe('kept-secret-of-the-first-install-000000');
    expect(keys.grantsOf('GRANARYMODELREADER01')).toEqual([{ bucket: 'models', prefix: '' }, { bucket: 'datasets', prefix: 'imagenet/' }]);
    expect(keys.secretOf('GRANARYDATASETS0001')).toMatch(/^[A-Za-z0-9]{40}$/);
    expect(keys.secretOf('GRANARYREMOVED000001')).toBeUndefined();
    // A Secret edited into another shape is not read, and not a failed upgrade either.
    expect(parseAccessKeys(keysSecret(renderWithLiveKeys('{"keys":[1,{"accessKeyId":2}]}', [CREATE]))?.stringData['keys.json'] ?? '', 'keys.json').size).toBe(1);
  });

  it('takes a secretAccessKey given in keys.create as it is', () => {
    const secret = 'a-secret-of-forty-characters-0123456789x';
    const objects = parseObjects(render([], [CREATE, `cache.s3Gateway.keys.create.GRANARYMODELREADER01.secretAccessKey=${secret}`]));
    const keys = parseAccessKeys(keysSecret(objects)?.stringData['keys.json'] ?? '', 'keys.json');
    expect(keys.secretOf('GRANARYMODELREADER01')).toBe(secret);
  });

  it('mounts an existing Secret (keys.existingSecret) and makes none', () => {
    const objects = parseObjects(render([EXISTING_SECRET]));
    expect(keysSecret(objects)).toBeUndefined();
    expect(cachePod(objects).volumes.find((volume) => volume.name === 's3-gateway-keys')?.secret?.secretName).toBe('granary-s3-gateway-keys');
    expect(gatewayService(objects)?.spec.internalTrafficPolicy).toBe('Local');
    const other = parseObjects(render([], ['cache.s3Gateway.keys.existingSecret=team-s3-keys']));
    expect(cachePod(other).volumes.find((volume) => volume.name === 's3-gateway-keys')?.secret?.secretName).toBe('team-s3-keys');
    expect(other.filter((object) => object.kind === 'Secret').map((object) => object.metadata.name).sort()).toEqual(['granary-cache-token', 'granary-s3']);
  });

  it('passes the port, the region, each virtual host suffix and the version TTL as flags, and Cluster as the traffic policy when asked', () => {
    const objects = parseObjects(render([], [
      CREATE, 'cache.s3Gateway.port=9100', 'cache.s3Gateway.region=eu-west-1', 'cache.s3Gateway.versionTtlMs=0',
      'cache.s3Gateway.virtualHostSuffixes={s3.example.com,granary-s3.granary.svc.cluster.local}', 'cache.s3Gateway.service.internalTrafficPolicy=Cluster',
    ]));
    expect(gatewayParts(objects).flags).toEqual([
      '--s3-listen=0.0.0.0:9100', `--s3-keys-file=${KEYS_DIR}/keys.json`, '--s3-region=eu-west-1',
      '--s3-virtual-host=s3.example.com', '--s3-virtual-host=granary-s3.granary.svc.cluster.local', '--s3-version-ttl=0',
    ]);
    expect(cacheServer(objects).ports.find((port) => port.name === 's3')?.containerPort).toBe(9100);
    expect(gatewayService(objects)?.spec).toMatchObject({ internalTrafficPolicy: 'Cluster', ports: [{ port: 9100, targetPort: 's3' }] });
  });

  it('serves HTTPS with the certificate of a TLS Secret, mounted read-only beside the keys, and NOTES.txt says https', () => {
    const objects = parseObjects(render([], [CREATE, 'cache.s3Gateway.tls.existingSecret=granary-s3-tls']));
    const server = cacheServer(objects);
    expect(server.args.filter((arg) => arg.startsWith('--s3-tls-'))).toEqual(['--s3-tls-cert=/etc/granary/s3-tls/tls.crt', '--s3-tls-key=/etc/granary/s3-tls/tls.key']);
    expect(server.volumeMounts.filter((mount) => mount.name === 's3-gateway-tls')).toEqual([{ name: 's3-gateway-tls', mountPath: '/etc/granary/s3-tls', readOnly: true }]);
    expect(cachePod(objects).volumes.find((volume) => volume.name === 's3-gateway-tls')).toEqual({
      name: 's3-gateway-tls',
      secret: { secretName: 'granary-s3-tls', items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }] },
    });
    // Without the value: plain HTTP, no certificate flag or volume.
    const plain = cacheServer(parseObjects(render([], [CREATE])));
    expect(plain.args.filter((arg) => arg.startsWith('--s3-tls-'))).toEqual([]);
    expect(plain.volumeMounts.filter((mount) => mount.name === 's3-gateway-tls')).toEqual([]);
    const notes = renderNotes([], workDir, [CREATE, 'cache.s3Gateway.tls.existingSecret=granary-s3-tls']);
    expect(notes).toContain('AWS_ENDPOINT_URL=https://granary-s3.granary.svc:9000');
    expect(notes).toContain('AWS_CA_BUNDLE: the CA that signed the certificate in the Secret granary-s3-tls');
  });

  it('passes API validation (kube-validate) with made keys, an existing Secret and either traffic policy', () => {
    const result = kubeValidateRenders([
      { name: 'on-prem', files: [ON_PREM], set: [] },
      { name: 'tls', files: [], set: [CREATE, 'cache.s3Gateway.tls.existingSecret=granary-s3-tls'] },
      { name: 'existing-secret', files: [EXISTING_SECRET], set: [] },
      { name: 'cluster-policy', files: [], set: [CREATE, 'cache.s3Gateway.service.internalTrafficPolicy=Cluster', 'cache.s3Gateway.virtualHostSuffixes={s3.example.com}'] },
    ]);
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });

  it('tells in NOTES.txt where the endpoint is, how to address it and where the keys are', () => {
    const notes = renderNotes([ON_PREM], workDir);
    expect(notes).toContain('AWS_ENDPOINT_URL=http://granary-s3.granary.svc:9000');
    expect(notes).toContain('AWS_REGION=us-east-1');
    expect(notes).toContain('path-style addressing');
    expect(notes).toContain('RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING=0');
    expect(notes).toContain("kubectl -n granary get secret granary-s3-gateway-keys -o jsonpath='{.data.keys\\.json}' | base64 -d");
    expect(notes).not.toContain('cache.s3Gateway) is off');
    const existing = renderNotes([EXISTING_SECRET], workDir);
    expect(existing).toContain('a key of keys.json in the Secret granary-s3-gateway-keys');
    expect(existing).toContain("AWS_REGION=<the cache pods' AWS_REGION (the object-store Secret's region), else us-east-1>");
    expect(existing).not.toContain('kubectl -n granary get secret granary-s3-gateway-keys');
  });
});

describe('the S3 endpoint without keys, or turned off', () => {
  it('renders no Service, port, flag, mount or Secret without keys (the default values), and NOTES.txt says what to set', () => {
    const objects = parseObjects(render([]));
    expect(gatewayService(objects)).toBeUndefined();
    expect(keysSecret(objects)).toBeUndefined();
    expect(gatewayParts(objects)).toEqual(NOTHING);
    const notes = renderNotes([], workDir);
    expect(notes).toContain("the cache's S3 endpoint (cache.s3Gateway) is off: it serves nothing without access keys");
    expect(notes).toContain('cache.s3Gateway.keys.existingSecret');
    expect(notes).not.toContain('AWS_ENDPOINT_URL');
    // Without a cache, NOTES.txt says nothing of it.
    expect(renderNotes([path.join(CHART_DIR, 'examples', 'no-cache.yaml')], workDir)).not.toContain('s3Gateway');
  });

  it('renders none of it with cache.s3Gateway.enabled=false, even with keys', () => {
    const objects = parseObjects(render([ON_PREM], ['cache.s3Gateway.enabled=false']));
    expect([gatewayService(objects), keysSecret(objects)]).toEqual([undefined, undefined]);
    expect(gatewayParts(objects)).toEqual(NOTHING);
  });

  it('renders none of it with cache.enabled=false, even with keys', () => {
    const objects = parseObjects(render([ON_PREM], ['cache.enabled=false']));
    expect([gatewayService(objects), keysSecret(objects)]).toEqual([undefined, undefined]);
    expect(objects.filter((object) => object.kind === 'DaemonSet').map((object) => object.metadata.name)).toEqual(['granary-node']);
  });
});

describe('renders the chart refuses', () => {
  it.each([
    ['keys given both ways', [CREATE, 'cache.s3Gateway.keys.existingSecret=mine'], 'cache.s3Gateway.keys: set existingSecret (a Secret you manage, with the key keys.json) or create (a Secret the chart makes), not both'],
    ["the cache's own port", [CREATE, 'cache.s3Gateway.port=7070'], "cache.s3Gateway.port 7070 is the cache server's own port (cache.port): give the S3 endpoint another, such as 9000"],
  ])('fails with %s, saying what to change', (_name, set, message) => {
    const result = helmTemplate([], set);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(message);
  });

  it.each([
    ['cache.s3Gateway.port=0', "at '/cache/s3Gateway/port': minimum: got 0, want 1"],
    ['cache.s3Gateway.region=eu west', "at '/cache/s3Gateway/region': 'eu west' does not match pattern"],
    ['cache.s3Gateway.virtualHostSuffixes={S3.Example.com}', "at '/cache/s3Gateway/virtualHostSuffixes/0': 'S3.Example.com' does not match pattern"],
    ['cache.s3Gateway.virtualHostSuffixes={s3.example.com:9000}', "at '/cache/s3Gateway/virtualHostSuffixes/0': 's3.example.com:9000' does not match pattern"],
    ['cache.s3Gateway.versionTtlMs=-1', "at '/cache/s3Gateway/versionTtlMs': minimum: got -1, want 0"],
    ['cache.s3Gateway.service.internalTrafficPolicy=Node', "at '/cache/s3Gateway/service/internalTrafficPolicy': value must be one of"],
    // helm's validator names a wrong place for a property name; the name and the pattern are right.
    ['cache.s3Gateway.keys.create.shortid.grants={models}', "invalid propertyName 'shortid'\n  - at '': 'shortid' does not match pattern '^[A-Z0-9]{16,128}$'"],
    ['cache.s3Gateway.keys.create.GRANARYMODELREADER01.grants={s3://models}', "at '/cache/s3Gateway/keys/create/GRANARYMODELREADER01/grants/0': 's3://models' does not match pattern"],
    ['cache.s3Gateway.keys.create.GRANARYMODELREADER01.secretAccessKey=short', "at '/cache/s3Gateway/keys/create/GRANARYMODELREADER01': missing property 'grants'"],
    ['cache.s3Gateway.keys.create.GRANARYMODELREADER01.secret=x', "at '/cache/s3Gateway/keys/create/GRANARYMODELREADER01': additional properties 'secret' not allowed"],
    ['cache.s3Gateway.enable=true', "at '/cache/s3Gateway': additional properties 'enable' not allowed"],
  ])('refuses --set %s in the values schema, naming the value', (pair, message) => {
    const result = helmTemplate([], [pair]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(message);
  });

  it('refuses a secretAccessKey shorter than 20 characters or with whitespace', () => {
    for (const secret of ['short', 'twenty characters with spaces']) {
      const result = helmTemplate([], [CREATE, `cache.s3Gateway.keys.create.GRANARYMODELREADER01.secretAccessKey=${secret}`]);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain("at '/cache/s3Gateway/keys/create/GRANARYMODELREADER01/secretAccessKey'");
      expect(result.stderr).toContain('does not match pattern');
    }
  });
});
