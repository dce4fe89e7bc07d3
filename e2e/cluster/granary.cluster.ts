// granary installed the way README.md says, on the one-node cluster (npm run test:cluster): helm
// install of charts/granary with the README's values, then the README's examples from
// manifests/examples/ with only their image names changed: training writes checkpoints through a
// read-write PVC, warm-up loads the model into the cache pods, three inference replicas read it
// read-only from a static PV. The object store is a versitygw on the host behind a relay that counts
// the bytes it sends, outside granary. What differs from the README is only what this node needs: the
// local image names, the test endpoint and credentials, where the node's kubelet and disks are, and a
// reclaim-delete StorageClass (the README's values have none) and an access key of the cache's S3 endpoint.
// Prometheus (the Debian package) scrapes the cache pods and the node plugin (its mounts' metrics), and every
// query of the chart's dashboard must answer. A Pod of another namespace downloads a model with boto3 through the
// node-local S3 endpoint, as the README's "Reading through the cache without a mount" configures one.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { stringify } from 'yaml';
import type { Boto3Download } from '../support/s3-clients';
import { type S3Server, s3Client, startS3Server } from '../support/s3-server';
import { type CountingRelay, startCountingRelay } from '../support/tcp-relay';
import { toolPath } from '../support/tools';
import toolVersions from '../tools/versions.json';
import { findLeftovers } from './cleanup';
import { waitFor } from './daemon';
import { run } from './exec';
import { mountsOfType } from './mounts';
import { type ClusterNode, bootNode } from './node';
import { runPod } from './pods';
import { type Prometheus, SCRAPE_INTERVAL_S, dashboardQueries, resolveQuery, startPrometheus } from './prometheus';
import { type StorageClassValues, helmInstallArgs, localExample, readmeInstall, storageClassesOf } from './readme';

const ROOT = path.resolve(__dirname, '..', '..');
const BOOT_TIMEOUT_MS = 40 * 60_000; // a first run builds the images (debootstrap, npm ci, tsc) on a busy machine
const STEP_TIMEOUT_MS = 15 * 60_000;
/** How long the release's pods get to be Ready, and each example to finish, on a busy 2-core machine. */
const READY_TIMEOUT_MS = 5 * 60_000;
const EXAMPLE_TIMEOUT_MS = 10 * 60_000;
/** The --timeout of a kubectl that waits itself (rollout status, wait): below the harness's 5-minute limit per kubectl. */
const KUBECTL_WAIT = '270s';
/** The release and namespace of the README's helm install (its examples name both). */
const RELEASE = 'granary';
const NAMESPACE = 'granary';
const DRIVER = 'csi.granary.dev';
/** The StorageClass the test adds through the chart values: the README's values have no reclaim-delete class. */
const DELETE_CLASS = 'granary-scratch';
/** The scale-out may read at most this much of the model from the object store (headers and listings included). */
const SCALE_OUT_READ_LIMIT = 1.05;
/** The Kubernetes default terminationGracePeriodSeconds, which the examples keep. */
const TERMINATION_GRACE_S = 30;
/** The inference Deployment's replicas after the scale-out. */
const REPLICAS = 3;
/** The cache's S3 endpoint: the access key the values give it (cache.s3Gateway.keys.create, the chart makes its secret) and the folder of the test bucket the key reads. */
const GATEWAY_KEY_ID = 'GRANARYCLUSTERTEST01';
const GATEWAY_PREFIX = 'models/boto3/';
/** The namespace of the Pod that loads a model through the S3 endpoint: its own, as the README's client pods. */
const CLIENT_NAMESPACE = 'model-loaders';
/** That model: five 4 MiB blocks of the cache and a part of a sixth, which boto3 reads in ranged GETs of its default 8 MiB chunk. */
const GATEWAY_MODEL_BYTES = 20 * 1024 * 1024 + 12_345;
const BOTO3_CHUNK_BYTES = 8 * 1024 * 1024;

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const seconds = (since: number): number => Math.round((Date.now() - since) / 100) / 10;

describe('granary installed as the README says, with its examples, on a one-node cluster', () => {
  let node: ClusterNode;
  let s3: S3Server;
  let relay: CountingRelay;
  let store: S3Client;
  let bucket: string;
  let stateDir: string;
  let model: { sha256: string; bytes: number } | undefined;
  let prometheus: Prometheus | undefined;
  /** When the warm-up began: the dashboard's rate windows reach back to it (the cache's fills and loads). */
  let warmupStarted = 0;
  let stopped = false;
  const timings: Record<string, number> = {};

  const kubectl = (args: readonly string[], input?: string) => node.kubectl(args, input);
  const json = async <T>(args: readonly string[]): Promise<T> => JSON.parse((await kubectl([...args, '-o', 'json'])).stdout) as T;
  const logs = async (args: readonly string[]): Promise<string> => (await kubectl(['logs', ...args])).stdout;

  /** What an operator would look at: pods, recent events, the release's and examples' logs, the mount logs on the node. */
  async function operatorReport(): Promise<string> {
    const parts: string[] = [];
    const add = async (title: string, produce: () => Promise<string>, lastLines = 60): Promise<void> => {
      const text = await produce().catch((error: Error) => `(failed: ${error.message})`);
      parts.push(`--- ${title}\n${text.trimEnd().split('\n').slice(-lastLines).join('\n')}`);
    };
    await add('kubectl get pods -A -o wide', async () => (await kubectl(['get', 'pods', '-A', '-o', 'wide'])).stdout);
    await add('kubectl get pvc,pv -A', async () => (await kubectl(['get', 'pvc,pv', '-A'])).stdout);
    await add('kubectl get events -A (latest last)', async () => (await kubectl(['get', 'events', '-A', '--sort-by=.lastTimestamp'])).stdout);
    for (const namespace of [NAMESPACE, 'default', CLIENT_NAMESPACE]) {
      const pods = await json<{ items: { metadata: { name: string } }[] }>(['get', 'pods', '-n', namespace]).catch(() => ({ items: [] }));
      for (const pod of pods.items) {
        await add(`kubectl logs -n ${namespace} ${pod.metadata.name} --all-containers`,
          () => logs(['-n', namespace, pod.metadata.name, '--all-containers', '--prefix', '--tail=40']), 40);
      }
    }
    for (const file of (await fs.readdir(stateDir).catch(() => [] as string[])).filter((name) => name.endsWith('.log'))) {
      await add(`mount log ${path.join(stateDir, file)} (on the node)`, () => fs.readFile(path.join(stateDir, file), 'utf8'), 20);
    }
    return parts.join('\n');
  }

  /** A test that records its duration and, when it fails, appends what an operator would read. */
  function step(name: string, timingKey: string, body: () => Promise<void>, timeoutMs = STEP_TIMEOUT_MS): void {
    test(name, async () => {
      const started = Date.now();
      try {
        await body();
      } catch (error) {
        if (node && !stopped && error instanceof Error) error.message += `\n\n${await operatorReport()}`;
        throw error;
      } finally {
        timings[timingKey] = seconds(started);
      }
    }, timeoutMs);
  }

  /** Waits until a Job has finished, then returns its logs; fails with them when it did not complete. */
  async function jobLogs(namespace: string, job: string): Promise<string> {
    type JobStatus = { status: { conditions?: { type: string; status: string }[] } };
    const finished = (status: JobStatus, type: string) => status.status.conditions?.some((c) => c.type === type && c.status === 'True') === true;
    let last: JobStatus = { status: {} };
    await waitFor(`job ${namespace}/${job} to complete or fail`, async () => {
      last = await json<JobStatus>(['get', 'job', job, '-n', namespace]);
      return finished(last, 'Complete') || finished(last, 'Failed');
    }, EXAMPLE_TIMEOUT_MS);
    const output = await logs(['-n', namespace, `job/${job}`]);
    if (!finished(last, 'Complete')) throw new Error(`job ${namespace}/${job} failed; its log:\n${output}`);
    return output;
  }

  /** The object keys under a prefix of the test bucket, read with an S3 client outside granary. */
  async function keysUnder(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await store.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((object) => object.Key!));
      token = page.NextContinuationToken;
    } while (token);
    return keys;
  }

  async function objectBytes(key: string): Promise<Buffer> {
    const response = await store.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await response.Body!.transformToByteArray());
  }

  /** Runs the pinned helm against the node, its caches and config in the harness's folder (not the user's home). */
  async function helmRun(args: readonly string[]) {
    const helmDir = path.join(node.config.baseDir, 'helm');
    await fs.mkdir(helmDir, { recursive: true });
    return run(toolPath('helm'), args, {
      cwd: ROOT,
      timeoutMs: READY_TIMEOUT_MS,
      env: { ...process.env, KUBECONFIG: node.kubeconfig, HELM_CACHE_HOME: path.join(helmDir, 'cache'),
        HELM_CONFIG_HOME: path.join(helmDir, 'config'), HELM_DATA_HOME: path.join(helmDir, 'data') },
    });
  }

  /** An example of manifests/examples/ with only its image names made the node's. */
  async function example(file: string): Promise<string> {
    const manifest = await fs.readFile(path.join(ROOT, 'manifests', 'examples', file), 'utf8');
    return localExample(manifest, { 'busybox:1.36': node.images.busybox, 'granary:0.1.0': node.images.granary });
  }

  /** The cache Service's ready endpoints, as the ring's members see them (http://IP:PORT). */
  async function readyCacheEndpoints(): Promise<string[]> {
    type Slice = { ports?: { name: string; port: number }[]; endpoints?: { addresses: string[]; conditions?: { ready?: boolean } }[] };
    const slices = await json<{ items: Slice[] }>(['get', 'endpointslices', '-n', NAMESPACE, '-l', `kubernetes.io/service-name=${RELEASE}-cache`]);
    return slices.items.flatMap((slice) => {
      const port = slice.ports?.find((entry) => entry.name === 'cache')?.port;
      return (slice.endpoints ?? []).filter((endpoint) => endpoint.conditions?.ready !== false)
        .flatMap((endpoint) => endpoint.addresses.map((address) => `http://${address}:${port}`));
    }).sort();
  }

  beforeAll(async () => {
    node = await bootNode();
    stateDir = path.join(node.config.baseDir, 'granary', 'mounts');
    s3 = await startS3Server();
    const s3Address = new URL(s3.endpoint);
    // On the node's address, which the pods reach (the network fence lets the pod network reach the harness's own address).
    relay = await startCountingRelay({ host: s3Address.hostname, port: Number(s3Address.port) }, { host: node.config.nodeIp });
    store = s3Client(s3);
    prometheus = await startPrometheus(node);
  }, BOOT_TIMEOUT_MS);

  afterAll(async () => {
    if (node && !stopped) await fs.writeFile(path.join(node.dirs.logs, 'granary-report.txt'), await operatorReport()).catch(() => undefined);
    await prometheus?.stop();
    await node?.stop();
    store?.destroy();
    await relay?.close();
    await s3?.stop();
    const report = { ...node?.timings, ...timings };
    process.stdout.write(`granary cluster timings (s): ${JSON.stringify(report)}\n`);
    if (node) await fs.writeFile(path.join(node.dirs.logs, 'granary-timings.json'), JSON.stringify(report, null, 2));
  }, STEP_TIMEOUT_MS);

  step('helm install with the README\'s values: controller, node plugin and cache pods Ready, the kubelet lists the driver', 'install', async () => {
    const install = readmeInstall(await fs.readFile(path.join(ROOT, 'README.md'), 'utf8'));
    const readmeClasses = storageClassesOf(install.values);
    const buckets = [...new Set(readmeClasses.map((storageClass) => storageClass.bucket))];
    bucket = readmeClasses[0]!.bucket;
    for (const name of buckets) await store.send(new CreateBucketCommand({ Bucket: name }));

    // What this node needs besides the README's values: its images, its object store, where its kubelet and disks are.
    const [granaryRepository, granaryTag] = splitImage(node.images.granary);
    const scratch: StorageClassValues = { name: DELETE_CLASS, bucket, reclaim: 'delete', reclaimPolicy: 'Delete' };
    const local = {
      image: { repository: granaryRepository, tag: granaryTag, pullPolicy: 'Never' },
      sidecars: { provisioner: { image: node.images.csiProvisioner }, pullPolicy: 'Never' },
      secrets: { endpoint: relay.endpoint },
      // The kubelet's root dir here, and host paths inside the harness's folder (its teardown removes them).
      node: { kubeletDir: node.dirs.kubelet, stateDir },
      cache: {
        disk: { hostPath: path.join(node.config.baseDir, 'granary', 'cache') },
        // The S3 endpoint's key for the boto3 Pod, as the README's trial way gives one: a folder of the test bucket.
        s3Gateway: { keys: { create: { [GATEWAY_KEY_ID]: { grants: [`${bucket}/${GATEWAY_PREFIX}`] } } } },
      },
      // Helm replaces lists: the README's classes, and one that deletes its prefix with its PVC.
      storageClasses: [...readmeClasses, scratch],
    };
    const helmDir = path.join(node.config.baseDir, 'helm');
    const valuesPath = path.join(helmDir, install.valuesFile);
    const localPath = path.join(helmDir, 'this-node.yaml');
    await fs.mkdir(helmDir, { recursive: true });
    await fs.writeFile(valuesPath, install.values);
    await fs.writeFile(localPath, stringify(local));

    // The node has no GPU: it is labelled the way GPU feature discovery labels one, for the cache's default selector.
    await kubectl(['label', 'node', node.config.nodeName, 'nvidia.com/gpu.present=true']);
    const started = Date.now();
    const args = helmInstallArgs(install, {
      chartDir: path.join(ROOT, 'charts', 'granary'),
      valuesPath,
      extraValuesPaths: [localPath],
      set: { 'secrets.accessKeyID': s3.accessKeyId, 'secrets.secretAccessKey': s3.secretAccessKey },
    });
    const helm = await helmRun(args);
    expect(helm.stdout).toContain('STATUS: deployed');
    expect(helm.stdout).toContain('The cache runs on nodes matching {"nvidia.com/gpu.present":"true"}');

    type Workload = { status: { replicas?: number; readyReplicas?: number; desiredNumberScheduled?: number; numberReady?: number } };
    const ready = async (kind: string, name: string): Promise<boolean> => {
      const { status } = await json<Workload>(['get', kind, name, '-n', NAMESPACE]);
      const [want, have] = kind === 'deployment' ? [status.replicas, status.readyReplicas] : [status.desiredNumberScheduled, status.numberReady];
      return (want ?? 0) > 0 && have === want;
    };
    for (const [kind, name, what] of [['deployment', `${RELEASE}-controller`, 'the controller (granary and csi-provisioner)'],
      ['daemonset', `${RELEASE}-node`, 'the node plugin'], ['daemonset', `${RELEASE}-cache`, 'the cache']] as const) {
      await waitFor(`${what} (${kind} ${name}) to have every pod Ready`, () => ready(kind, name), READY_TIMEOUT_MS);
    }
    // The built-in registration, proven by a real kubelet: it lists the driver on its CSINode.
    await waitFor(`the kubelet to list ${DRIVER} on CSINode ${node.config.nodeName}`, async () => {
      const { stdout } = await kubectl(['get', 'csinode', node.config.nodeName, '-o', 'jsonpath={.spec.drivers[*].name}']);
      return stdout.split(' ').includes(DRIVER);
    }, READY_TIMEOUT_MS);
    timings.installToReady = seconds(started);

    type Pod = { spec: { containers: { image: string }[] }; status: { containerStatuses?: { ready: boolean }[] } };
    const [controller] = (await json<{ items: Pod[] }>(['get', 'pods', '-n', NAMESPACE, '-l', 'app.kubernetes.io/component=controller'])).items;
    expect(controller?.spec.containers.map((container) => container.image).sort()).toEqual([node.images.csiProvisioner, node.images.granary].sort());
    expect(controller?.status.containerStatuses?.every((status) => status.ready)).toBe(true);
    expect(await logs(['-n', NAMESPACE, `daemonset/${RELEASE}-node`, '-c', 'granary'])).toContain('registered with the kubelet');
    const classes = await json<{ items: { metadata: { name: string }; parameters: Record<string, string>; reclaimPolicy: string }[] }>(['get', 'storageclass']);
    expect(classes.items.map((storageClass) => storageClass.metadata.name).sort()).toEqual([...readmeClasses.map((c) => c.name), DELETE_CLASS].sort());
  });

  step('the node plugin\'s service account may create only the Pods and Secrets it labels, in its own namespace, and read no Secret (its Role and the admission policy)', 'rbac', async () => {
    const as = ['--as', `system:serviceaccount:${NAMESPACE}:${RELEASE}-node`, '--as-group', 'system:serviceaccounts', '--as-group', `system:serviceaccounts:${NAMESPACE}`];
    const labels = { 'app.kubernetes.io/name': 'granary', 'app.kubernetes.io/component': 'mount', 'app.kubernetes.io/managed-by': 'granary-node' };
    const pod = (namespace: string, podLabels: Record<string, string>) => JSON.stringify({ apiVersion: 'v1', kind: 'Pod',
      metadata: { name: 'probe', namespace, labels: podLabels }, spec: { nodeName: node.config.nodeName, containers: [{ name: 'probe', image: node.images.busybox }] } });
    const secret = (secretLabels: Record<string, string>) => JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'probe', namespace: NAMESPACE, labels: secretLabels } });
    // Server-side dry runs: authorization and admission decide, nothing is created.
    const attempt = (manifest: string) => kubectl([...as, 'create', '--dry-run=server', '-f', '-'], manifest).then(() => 'allowed', (error: Error) => error.message);
    const denied = /ValidatingAdmissionPolicy '[^']*node-mounts' with binding '[^']*' denied request/;
    expect(await attempt(pod(NAMESPACE, labels))).toBe('allowed');
    expect(await attempt(secret(labels))).toBe('allowed');
    expect(await attempt(pod(NAMESPACE, {}))).toMatch(denied);
    expect(await attempt(secret({}))).toMatch(denied);
    expect(await attempt(pod('default', labels))).toMatch(/forbidden: User "system:serviceaccount:granary:granary-node" cannot create resource "pods" .* in the namespace "default"/);
    const read = await kubectl([...as, 'get', 'secret', 'granary-s3', '-n', NAMESPACE]).then(() => 'read', (error: Error) => error.message);
    expect(read).toMatch(/forbidden: .* cannot get resource "secrets"/);
  });

  step('the training Job writes checkpoints through a granary-rw PVC (tmp, fsync, rename): plain objects in the bucket', 'training', async () => {
    await kubectl(['apply', '-f', '-'], await example('training-job.yaml'));
    const output = await jobLogs('default', 'train-llm');
    for (const line of ['saved steps/step-1.ckpt', 'saved steps/step-2.ckpt', 'saved steps/step-3.ckpt', 'exported final/model.bin']) {
      expect(output).toContain(line);
    }
    const printed = /^([0-9a-f]{64}) {2}model\.bin$/m.exec(output)?.[1];
    expect(printed).toBeDefined();

    // The PVC's prefix, default/llm-checkpoints/ (the driver's ${pvc.namespace}/${pvc.name}), as an S3 client sees it.
    const prefix = 'default/llm-checkpoints/';
    const keys = await keysUnder(prefix);
    expect(keys.filter((key) => !key.endsWith('/')).sort()).toEqual(
      ['final/model.bin', 'final/model.sha256', 'steps/step-1.ckpt', 'steps/step-2.ckpt', 'steps/step-3.ckpt'].map((key) => prefix + key));
    const bin = await objectBytes(`${prefix}final/model.bin`);
    expect(bin.length).toBe(32 * 1024 * 1024);
    expect(sha256(bin)).toBe(printed);
    expect(sha256(await objectBytes(`${prefix}steps/step-3.ckpt`))).toBe(printed);
    expect((await objectBytes(`${prefix}final/model.sha256`)).toString()).toBe(`${printed}  model.bin\n`);
    model = { sha256: printed!, bytes: bin.length };
    // The checkpoints reached the store through the relay: it is in the path the scale-out's count relies on.
    expect(relay.upstreamBytes).toBeGreaterThan(4 * model.bytes);

    const events = (await kubectl(['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.kind=PersistentVolumeClaim,involvedObject.name=llm-checkpoints'])).stdout;
    expect(events).toMatch(/ProvisioningSucceeded\s+.*Successfully provisioned volume/);
    expect(await logs(['-n', NAMESPACE, `deployment/${RELEASE}-controller`, '-c', 'granary'])).toContain('volume created');
  });

  step('the warm-up Job loads the model into every ready cache pod, found through the cache Service\'s EndpointSlices', 'warmup', async () => {
    warmupStarted = Date.now();
    const members = await readyCacheEndpoints();
    const cachePods = await json<{ items: unknown[] }>(['get', 'pods', '-n', NAMESPACE, '-l', 'app.kubernetes.io/component=cache']);
    expect(members).toHaveLength(cachePods.items.length);
    expect(members.length).toBeGreaterThan(0);

    await kubectl(['apply', '-f', '-'], await example('warmup-job.yaml'));
    const output = await jobLogs(NAMESPACE, 'warmup-llm-model');
    expect(output).toContain('warm-up of s3://granary-volumes/default/llm-checkpoints/final');
    expect(output).toMatch(/^\s+files\s+2$/m);
    expect(output).toMatch(/^\s+failed blocks\s+0$/m);
    for (const member of members) expect(output).toContain(member);

    // Every cache pod joined the ring of every other, from the EndpointSlices (the cache server's own log).
    const cacheLog = await logs(['-n', NAMESPACE, `daemonset/${RELEASE}-cache`]);
    expect(cacheLog).toContain('cache membership from Kubernetes EndpointSlices');
    for (const member of members) expect(cacheLog).toMatch(new RegExp(`"peer":"${member}".*"msg":"cache server joined the ring"`));

    // granary cache status, from inside the cluster (a cache pod, with the token it mounts).
    const status = (await kubectl(['exec', '-n', NAMESPACE, `daemonset/${RELEASE}-cache`, '--', 'granary', 'cache', 'status',
      `--peers=${members.join(',')}`, '--token-file=/etc/granary/token/token'])).stdout;
    for (const member of members) expect(status).toMatch(new RegExp(`^${member}\\s+up\\s`, 'm'));
    expect(status).toContain(`endpoint ${relay.endpoint}`);
  });

  step(`the inference Deployment scaled to ${REPLICAS} replicas reads the model read-only from a static PV, through the cache`, 'inference', async () => {
    if (!model) throw new Error('the training step did not export a model');
    const before = relay.downstreamBytes;
    await kubectl(['apply', '-f', '-'], await example('inference-deployment.yaml'));
    await kubectl(['scale', 'deployment/llm-server', `--replicas=${REPLICAS}`]);
    await kubectl(['rollout', 'status', 'deployment/llm-server', `--timeout=${KUBECTL_WAIT}`]);
    const readFromStore = relay.downstreamBytes - before;

    const pods = await json<{ items: { metadata: { name: string }; status: { phase: string } }[] }>(['get', 'pods', '-n', 'default', '-l', 'app=llm-server']);
    expect(pods.items).toHaveLength(REPLICAS);
    for (const pod of pods.items) {
      const name = pod.metadata.name;
      expect(await logs(['-n', 'default', name])).toContain('model.bin: OK');
      const { stdout } = await kubectl(['exec', '-n', 'default', name, '--', 'sha256sum', '/model/model.bin']);
      expect(stdout.split(/\s+/)[0]).toBe(model.sha256);
      const write = await kubectl(['exec', '-n', 'default', name, '--', 'sh', '-c', 'echo x > /model/intruder']).then(() => 'written', (error: Error) => error.message);
      expect(write).toContain('Read-only file system');
    }
    expect(readFromStore).toBeLessThanOrEqual(SCALE_OUT_READ_LIMIT * model.bytes);
    timings.scaleOutReadMiB = Math.round(readFromStore / 1024 / 102.4) / 10;

    // One FUSE mount of the model on the node, read-only, made by its mount Pod (the chart's default mounter), bound onto
    // the staging path, and from there read-only into each replica.
    const source = 's3://granary-volumes/default/llm-checkpoints/final';
    const mounts = (await mountsOfType(node.dirs.kubelet, 'fuse.granary')).filter((mount) => mount.source.replace(/\/$/, '') === source);
    expect(mounts).toHaveLength(2 + REPLICAS);
    expect(mounts.every((mount) => mount.options.includes('ro'))).toBe(true);
    expect(mounts.filter((mount) => mount.mountPoint.startsWith(`${node.dirs.kubelet}/plugins/csi.granary.dev/mounts/`))).toHaveLength(1);
    const mountPods = await json<{ items: { metadata: { annotations?: Record<string, string> }; status: { phase: string } }[] }>(['get', 'pods', '-n', NAMESPACE, '-l', 'app.kubernetes.io/component=mount']);
    expect(mountPods.items.filter((pod) => pod.metadata.annotations?.['csi.granary.dev/volume-id'] === 'granary-volumes/default/llm-checkpoints/final').map((pod) => pod.status.phase)).toEqual(['Running']);
    const nodeLog = await logs(['-n', NAMESPACE, `daemonset/${RELEASE}-node`, '-c', 'granary']);
    expect(nodeLog).toMatch(/"volumeId":"granary-volumes\/default\/llm-checkpoints\/final".*"msg":"granary mount is live: volume staged"/);
    expect(nodeLog).toMatch(/"volumeId":"granary-volumes\/default\/llm-checkpoints\/final".*"msg":"volume published into the pod read-only"/);
  });

  step('Prometheus scrapes the cache pods and the node plugin (its mounts\' metrics); every query of the shipped dashboard returns data', 'metrics', async () => {
    if (!prometheus || !model) throw new Error('no Prometheus, or the training step did not export a model');
    const promql = prometheus;
    const volumeId = 'granary-volumes/default/llm-checkpoints/final';
    // A scrape after the replicas' reads: the inference mount's counters through the node plugin, labelled with its volume.
    const mountBytes = `sum(granary_mount_cache_bytes_total{namespace="${NAMESPACE}",volume_id="${volumeId}"})`;
    await waitFor('Prometheus to have scraped the inference mount\'s reads', async () =>
      Number((await promql.query(mountBytes))[0]?.value[1] ?? 0) >= model!.bytes, READY_TIMEOUT_MS);

    // Every cache pod and node plugin pod is a target that answers.
    const pods = await json<{ items: { metadata: { name: string } }[] }>(['get', 'pods', '-n', NAMESPACE, '-l', 'app.kubernetes.io/component in (cache,node)']);
    const up = await promql.query(`up{namespace="${NAMESPACE}"}`);
    expect(up.map((sample) => `${sample.metric.pod} ${sample.value[1]}`).sort()).toEqual(pods.items.map((pod) => `${pod.metadata.name} 1`).sort());
    const staged = await promql.query(`granary_node_mounts{namespace="${NAMESPACE}",read_only="true"}`);
    expect(staged.map((sample) => Number(sample.value[1]))).toEqual([1]);

    // The shipped dashboard's every query, as Grafana sends it for the release's namespace, over a window reaching back to the warm-up.
    const dashboard = await fs.readFile(path.join(ROOT, 'charts', 'granary', 'dashboards', 'granary-cache.json'), 'utf8');
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(10);
    const window = `${Math.ceil((Date.now() - warmupStarted) / 1000) + 4 * SCRAPE_INTERVAL_S}s`;
    const answers = await Promise.all(queries.map(async (query) => {
      const expr = resolveQuery(query.expr, { namespace: NAMESPACE }, window);
      const result = await promql.query(expr);
      return { panel: `${query.panel} [${query.refId}]`, expr, values: result.map((sample) => sample.value[1]) };
    }));
    const empty = answers.filter((answer) => answer.values.length === 0);
    expect(empty.map((answer) => `${answer.panel}: ${answer.expr}`)).toEqual([]);
    process.stdout.write(`dashboard queries:\n${answers.map((answer) => `  ${answer.panel}: ${answer.values.join(', ')}`).join('\n')}\n`);
  });

  step('the replicas read the model on without one error while the node plugin is deleted, the chart upgraded to a new image tag and the mount\'s serving process killed', 'survival', async () => {
    if (!model) throw new Error('the training step did not export a model');
    const expected = `${model.sha256}  /model/model.bin`;
    type Pod = { metadata: { name: string; uid: string }; spec: { containers: { image: string }[] }; status: { phase: string; containerStatuses?: { restartCount: number }[] } };
    const podsOf = async (namespace: string, selector: string) => (await json<{ items: Pod[] }>(['get', 'pods', '-n', namespace, '-l', selector])).items;
    const replicas = (await podsOf('default', 'app=llm-server')).map((pod) => pod.metadata.name);
    expect(replicas).toHaveLength(REPLICAS);
    const mountPodsBefore = (await podsOf(NAMESPACE, 'app.kubernetes.io/component=mount')).map((pod) => pod.metadata.uid).sort();
    expect(mountPodsBefore.length).toBeGreaterThan(0);
    // Each replica reads the whole model again and again, one line per read (its sha256, or READ-FAILED with the error).
    for (const pod of replicas) {
      await kubectl(['exec', '-n', 'default', pod, '--', 'sh', '-c',
        'rm -f /tmp/reads.log /tmp/stop; (while [ ! -e /tmp/stop ]; do sha256sum /model/model.bin || echo READ-FAILED; done) > /tmp/reads.log 2>&1 &']);
    }
    // The node's page cache would answer the reads without granary: it is dropped all along, so they reach the mount.
    const dropper = setInterval(() => void fs.writeFile('/proc/sys/vm/drop_caches', '1').catch(() => undefined), 300);
    try {
      // 1. The node plugin pod is deleted: its DaemonSet makes another, which adopts the mount Pods.
      const [nodePlugin] = await podsOf(NAMESPACE, 'app.kubernetes.io/component=node');
      await kubectl(['delete', 'pod', '-n', NAMESPACE, nodePlugin!.metadata.name, '--wait=true']);
      await kubectl(['rollout', 'status', `daemonset/${RELEASE}-node`, '-n', NAMESPACE, `--timeout=${KUBECTL_WAIT}`]);
      await waitFor('the new node plugin to adopt the mount Pods', async () =>
        (await logs(['-n', NAMESPACE, `daemonset/${RELEASE}-node`, '-c', 'granary'])).includes('adopted a mount Pod'), READY_TIMEOUT_MS);

      // 2. helm upgrade to a new image tag (the same image, retagged): the node plugin rolls, the mount Pods stay.
      const [repository] = splitImage(node.images.granary);
      await run('ctr', ['--address', node.dirs.containerdSocket, '-n', 'k8s.io', 'images', 'tag', '--force', node.images.granary, `${repository}:upgraded`]);
      const upgrade = await helmRun(['upgrade', RELEASE, path.join(ROOT, 'charts', 'granary'), '--namespace', NAMESPACE, '--reuse-values', '--set', 'image.tag=upgraded', '--wait', '--timeout', KUBECTL_WAIT]);
      expect(upgrade.stdout).toContain('STATUS: deployed');
      await kubectl(['rollout', 'status', `daemonset/${RELEASE}-node`, '-n', NAMESPACE, `--timeout=${KUBECTL_WAIT}`]);
      const [upgraded] = await podsOf(NAMESPACE, 'app.kubernetes.io/component=node');
      expect(upgraded?.spec.containers.map((container) => container.image)).toContain(`${repository}:upgraded`);
      await waitFor('the upgraded node plugin to adopt the mount Pods', async () =>
        (await logs(['-n', NAMESPACE, `daemonset/${RELEASE}-node`, '-c', 'granary'])).includes('adopted a mount Pod'), READY_TIMEOUT_MS);

      // 3. kill -9 of the process serving the model's FUSE mount, inside its mount Pod: its holder starts another.
      const serving = (await run('pgrep', ['-f', 'mount s3://granary-volumes/default/llm-checkpoints/final/ .*--fuse-fd 3'])).stdout.trim().split(/\s+/).filter(Boolean);
      expect(serving).toHaveLength(1);
      process.kill(Number(serving[0]), 'SIGKILL');
      const mountPod = (await podsOf(NAMESPACE, 'app.kubernetes.io/component=mount')).find((pod) => pod.metadata.uid && pod.status.phase === 'Running' &&
        mountPodsBefore.includes(pod.metadata.uid));
      await waitFor('the mount Pod to log its takeover', async () => (await logs(['-n', NAMESPACE, mountPod!.metadata.name])).includes('took over the FUSE session'), READY_TIMEOUT_MS);
      // A few more whole reads through the new serving process.
      await new Promise((resolve) => setTimeout(resolve, 5000));
    } finally {
      clearInterval(dropper);
      for (const pod of replicas) await kubectl(['exec', '-n', 'default', pod, '--', 'touch', '/tmp/stop']).catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
    for (const pod of replicas) {
      const lines = (await kubectl(['exec', '-n', 'default', pod, '--', 'cat', '/tmp/reads.log'])).stdout.trim().split('\n');
      expect(lines.length).toBeGreaterThan(5);
      expect(lines.filter((line) => line !== expected)).toEqual([]);
      timings[`reads-${pod}`] = lines.length;
    }
    // The same mount Pods all along, never restarted.
    const mountPodsAfter = await podsOf(NAMESPACE, 'app.kubernetes.io/component=mount');
    expect(mountPodsAfter.map((pod) => pod.metadata.uid).sort()).toEqual(mountPodsBefore);
    expect(mountPodsAfter.every((pod) => pod.status.phase === 'Running' && (pod.status.containerStatuses ?? []).every((status) => status.restartCount === 0))).toBe(true);
  });

  step('deleting a PVC of a reclaim: delete class removes its prefix; the retain class keeps the training prefix', 'reclaim', async () => {
    const claim = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'scratch', namespace: 'default' },
      spec: { storageClassName: DELETE_CLASS, accessModes: ['ReadWriteMany'], resources: { requests: { storage: '1Gi' } } } };
    const writer = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'scratch-writer', namespace: 'default' }, spec: {
      restartPolicy: 'Never', terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: node.images.busybox, command: ['sh', '-c', 'echo scratch > /data/file && sync /data/file'],
        volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'scratch' } }] } };
    await kubectl(['apply', '-f', '-'], `${JSON.stringify(claim)}\n${JSON.stringify(writer)}`);
    await waitFor('pod scratch-writer to finish', async () =>
      ['Succeeded', 'Failed'].includes((await kubectl(['get', 'pod', 'scratch-writer', '-n', 'default', '-o', 'jsonpath={.status.phase}'])).stdout), EXAMPLE_TIMEOUT_MS);
    expect((await kubectl(['get', 'pod', 'scratch-writer', '-n', 'default', '-o', 'jsonpath={.status.phase}'])).stdout).toBe('Succeeded');
    expect(await keysUnder('default/scratch/')).toContain('default/scratch/file');
    const scratchVolume = (await kubectl(['get', 'pvc', 'scratch', '-n', 'default', '-o', 'jsonpath={.spec.volumeName}'])).stdout;
    await kubectl(['delete', 'pod', 'scratch-writer', '-n', 'default', '--wait=true']);
    await kubectl(['delete', 'pvc', 'scratch', '-n', 'default', '--wait=true']);
    await kubectl(['wait', '--for=delete', `pv/${scratchVolume}`, `--timeout=${KUBECTL_WAIT}`]);
    expect(await keysUnder('default/scratch/')).toEqual([]);
    expect(await logs(['-n', NAMESPACE, `deployment/${RELEASE}-controller`, '-c', 'granary'])).toContain('volume deleted with its objects');

    // granary-rw retains (the README's values: reclaim and reclaimPolicy left at retain/Retain).
    const trainingVolume = (await kubectl(['get', 'pvc', 'llm-checkpoints', '-n', 'default', '-o', 'jsonpath={.spec.volumeName}'])).stdout;
    await kubectl(['delete', 'job', 'train-llm', '-n', 'default', '--wait=true']);
    await kubectl(['delete', 'pvc', 'llm-checkpoints', '-n', 'default', '--wait=true']);
    await kubectl(['wait', '--for=jsonpath={.status.phase}=Released', `pv/${trainingVolume}`, `--timeout=${KUBECTL_WAIT}`]);
    expect(await keysUnder('default/llm-checkpoints/')).toContain('default/llm-checkpoints/final/model.bin');
  });

  step('a Pod of another namespace downloads a model with boto3 through the node-local S3 endpoint: ranged GETs, one read from the store, the cache pod\'s counters', 'gateway', async () => {
    // The model, put in the bucket straight (not through the relay, which counts what granary reads).
    const data = randomBytes(GATEWAY_MODEL_BYTES);
    const key = `${GATEWAY_PREFIX}model.safetensors`;
    await store.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data }));

    // The chart's Service. This node runs neither kube-proxy nor cluster DNS: the harness routes the ClusterIP to the endpoint
    // kube-proxy would pick (Local: this node's cache pod, the one the upgrade of the survival step made), and the Pod
    // resolves the Service's name to it through hostAliases, as cluster DNS would answer.
    const service = `${RELEASE}-s3`;
    const host = `${service}.${NAMESPACE}.svc`;
    expect((await kubectl(['get', 'service', service, '-n', NAMESPACE, '-o', 'jsonpath={.spec.internalTrafficPolicy}'])).stdout).toBe('Local');
    const clusterIp = await node.routeService(NAMESPACE, service);

    // The key from the Secret the chart made (NOTES.txt's kubectl), copied into a Secret of the client's namespace.
    type Keys = { keys: { accessKeyId: string; secretAccessKey: string; grants: string[] }[] };
    const keysJson = (await kubectl(['get', 'secret', `${RELEASE}-s3-gateway-keys`, '-n', NAMESPACE, '-o', 'jsonpath={.data.keys\\.json}'])).stdout;
    const reader = (JSON.parse(Buffer.from(keysJson, 'base64').toString('utf8')) as Keys).keys.find((entry) => entry.accessKeyId === GATEWAY_KEY_ID);
    expect(reader?.grants).toEqual([`${bucket}/${GATEWAY_PREFIX}`]);
    await kubectl(['create', 'namespace', CLIENT_NAMESPACE]);
    await kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'model-reader', namespace: CLIENT_NAMESPACE },
      stringData: { AWS_ACCESS_KEY_ID: reader!.accessKeyId, AWS_SECRET_ACCESS_KEY: reader!.secretAccessKey } }));
    // The tests' own boto3 runner (e2e/support/s3_client.py), its endpoint and region left to boto3's environment.
    await kubectl(['create', 'configmap', 's3-client', '-n', CLIENT_NAMESPACE, `--from-file=${path.join(ROOT, 'e2e', 'support', 's3_client.py')}`]);
    const job = { operation: 'download', endpoint: null, region: null, bucket, key, file: '/scratch/model.safetensors',
      chunkBytes: BOTO3_CHUNK_BYTES, concurrency: 4 };

    const before = relay.downstreamBytes;
    const endpoint = `http://${host}:9000`;
    const pod = await runPod(node, 'boto3-download', {
      image: node.images.boto3,
      args: ['/scripts/s3_client.py', JSON.stringify(job)],
      envFrom: [{ secretRef: { name: 'model-reader' } }],
      // The README's settings; AWS_DEFAULT_REGION besides its AWS_REGION, since boto3 reads only the former.
      env: [{ name: 'AWS_ENDPOINT_URL', value: endpoint }, { name: 'AWS_REGION', value: 'us-east-1' }, { name: 'AWS_DEFAULT_REGION', value: 'us-east-1' }],
      securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
      volumeMounts: [{ name: 'scripts', mountPath: '/scripts', readOnly: true }, { name: 'scratch', mountPath: '/scratch' }],
    }, {
      hostAliases: [{ ip: clusterIp, hostnames: [host] }],
      volumes: [{ name: 'scripts', configMap: { name: 's3-client' } }, { name: 'scratch', emptyDir: {} }],
    }, CLIENT_NAMESPACE);
    const readFromStore = relay.downstreamBytes - before;
    timings.gatewayPodSeconds = pod.startSeconds;
    expect({ phase: pod.phase, exitCode: pod.exitCode }).toEqual({ phase: 'Succeeded', exitCode: 0 });

    // The Pod's own account: the pinned boto3, the model's bytes, a HeadObject then one ranged GET per 8 MiB (s3transfer
    // leaves the last one open-ended), all at the Service's name.
    const download = JSON.parse(pod.logs.trim().split('\n').at(-1)!) as Boto3Download;
    expect(download).toMatchObject({ sha256: sha256(data), bytes: GATEWAY_MODEL_BYTES, versions: { boto3: toolVersions.boto3.version } });
    expect(download.requests.map((request) => request.operation).sort()).toEqual(['GetObject', 'GetObject', 'GetObject', 'HeadObject']);
    expect(download.requests.filter((request) => request.operation === 'GetObject').map((request) => request.range).sort())
      .toEqual(['bytes=0-8388607', 'bytes=16777216-', 'bytes=8388608-16777215']);
    expect(download.requests.every((request) => request.url.startsWith(`${endpoint}/${bucket}/${GATEWAY_PREFIX}`))).toBe(true);
    // The cache read the model from the store once (a cold object: every block filled, none twice).
    expect(readFromStore).toBeGreaterThanOrEqual(GATEWAY_MODEL_BYTES);
    expect(readFromStore).toBeLessThanOrEqual(SCALE_OUT_READ_LIMIT * GATEWAY_MODEL_BYTES);
    timings.gatewayReadMiB = Math.round(readFromStore / 1024 / 102.4) / 10;

    // The cache pod's S3 counters, as Prometheus scraped them: every answer the Pod had, and the model's bytes, sent by the gateway.
    if (!prometheus) throw new Error('no Prometheus');
    const promql = prometheus;
    const sent = `sum(granary_s3_gateway_sent_bytes_total{namespace="${NAMESPACE}"})`;
    await waitFor('Prometheus to have scraped the S3 endpoint\'s answers', async () =>
      Number((await promql.query(sent))[0]?.value[1] ?? 0) >= GATEWAY_MODEL_BYTES, READY_TIMEOUT_MS);
    expect(Number((await promql.query(sent))[0]!.value[1])).toBe(GATEWAY_MODEL_BYTES);
    const answers = await promql.query(`sum by (operation, code) (granary_s3_gateway_requests_total{namespace="${NAMESPACE}"})`);
    expect(answers.map((sample) => `${sample.metric.operation} ${sample.metric.code} ${sample.value[1]}`).sort())
      .toEqual(['GetObject 206 3', 'HeadObject 200 1']);
  });

  step('deleting the examples and helm uninstall unstage every volume; the teardown leaves nothing on the machine', 'uninstall', async () => {
    // The replicas stop on SIGTERM: one that ignored it would take the whole grace period (30 s) and a SIGKILL.
    const deleting = Date.now();
    await kubectl(['delete', '-f', '-', '--wait=true'], await example('inference-deployment.yaml'));
    timings.inferenceDeleted = seconds(deleting);
    expect(timings.inferenceDeleted).toBeLessThan(TERMINATION_GRACE_S);
    await kubectl(['delete', '-f', '-', '--wait=true'], await example('warmup-job.yaml'));
    await waitFor('every granary FUSE mount under the kubelet dir to be unmounted (NodeUnpublish, NodeUnstage)',
      async () => (await mountsOfType(node.dirs.kubelet, 'fuse.granary')).length === 0, READY_TIMEOUT_MS);
    await helmRun(['uninstall', RELEASE, '--namespace', NAMESPACE, '--wait']);
    await waitFor(`the kubelet to drop ${DRIVER} from CSINode ${node.config.nodeName}`, async () =>
      !(await kubectl(['get', 'csinode', node.config.nodeName, '-o', 'jsonpath={.spec.drivers[*].name}'])).stdout.includes(DRIVER), READY_TIMEOUT_MS);
    stopped = true;
    await prometheus?.stop();
    await node.stop();
    expect(await findLeftovers(node.config)).toEqual({ processes: [], mounts: [], links: [], iptablesRules: [], cgroups: [], files: [] });
  });
});

/** An image name split into repository and tag. */
function splitImage(image: string): [string, string] {
  const at = image.lastIndexOf(':');
  return [image.slice(0, at), image.slice(at + 1)];
}
