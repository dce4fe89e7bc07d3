import type { V1Pod } from '@kubernetes/client-node';
import { capturingLogger, silentLogger } from '../../log/logger';
import { CsiError } from '../errors';
import { FakeMounter } from './fake';
import { FakePodApi } from './fake-pod-api';
import { MOUNT_POD_ANNOTATIONS, MOUNT_POD_LABELS, mountPodPaths, nodeLabelValue } from './mount-pod-spec';
import { describePodStatus, MountPods } from './mount-pods';
import { volumeHash, type MountRequest } from './supervisor';

const log = silentLogger();
const SECRET = 'pod-secret-value-456';
const NODE = 'gpu-node-7';
const POD_DIR = '/var/lib/kubelet/plugins/csi.granary.dev/mounts';
const STATE_DIR = '/var/lib/granary/mounts';
const VOLUME = 'bucket-one/team/data';
const STAGING = '/var/lib/kubelet/plugins/kubernetes.io/csi/csi.granary.dev/abc/globalmount';
const paths = mountPodPaths(POD_DIR, STATE_DIR, VOLUME, STAGING);

/** The staging path the kubelet gives a volume (its hash stands in for the kubelet's). */
const stagingOf = (volumeId: string): string => `/var/lib/kubelet/plugins/kubernetes.io/csi/csi.granary.dev/${volumeHash(volumeId)}/globalmount`;

function request(overrides: Partial<MountRequest> = {}): MountRequest {
  return {
    volumeId: VOLUME,
    location: { bucket: 'bucket-one', prefix: 'team/data/' },
    stagingTargetPath: STAGING,
    readOnly: false,
    settings: { endpoint: 'http://s3.example:9000', region: 'eu-west-1', credentials: { accessKeyId: 'AKIDPOD', secretAccessKey: SECRET } },
    flags: ['--uid', '1000'],
    ...overrides,
  };
}

describe('MountPods', () => {
  let api: FakePodApi;
  let mounter: FakeMounter;
  let suffix: number;

  function supervisor(options: { readyTimeoutMs?: number; files?: Record<string, string> } = {}): MountPods {
    return new MountPods({
      api,
      mounter,
      template: { image: 'registry.example/granary:1.2.3', nodeName: NODE, serviceAccountName: 'granary-mount', priorityClassName: 'system-node-critical', terminationGracePeriodSeconds: 0 },
      podDir: POD_DIR,
      stateDir: STATE_DIR,
      readyTimeoutMs: options.readyTimeoutMs ?? 2000,
      pollMs: 5,
      unmountMarginMs: 50,
      baseEnvironment: { PATH: '/bin', HOME: '/root', GRANARY_LOG_LEVEL: 'debug', KUBERNETES_SERVICE_HOST: '10.0.0.1', UNRELATED_SECRET: 'x' },
      readFile: async (file) => {
        const text = options.files?.[file];
        if (text === undefined) throw new Error(`ENOENT: ${file}`);
        return text;
      },
      makeDirectory: async () => undefined,
      randomSuffix: () => `s${suffix++}`,
    });
  }

  /** The kubelet and `granary mount` of a healthy mount Pod: Running, its FUSE mount at the mount point; unmounted on delete. */
  function healthyKubelet(): void {
    api.onCreatePod = (pod) => {
      const readOnly = pod.spec?.containers[0]?.args?.includes('--read-only') ?? false;
      mounter.add({ source: 's3://bucket-one/team/data/', target: paths.mountPoint, fsType: 'fuse.granary', readOnly });
      api.setStatus(pod.metadata?.name ?? '', { phase: 'Running' });
    };
    api.onDeletePod = () => void mounter.unmount(paths.mountPoint);
  }

  beforeEach(() => {
    api = new FakePodApi('granary');
    mounter = new FakeMounter();
    suffix = 0;
  });

  describe('start', () => {
    it('runs granary mount in a privileged Pod on this node, labelled for adoption, and binds its mount onto the staging path', async () => {
      healthyKubelet();
      const pods = supervisor();
      const record = await pods.start(request(), log);

      const [pod] = [...api.pods.values()];
      expect(pod?.metadata?.name).toBe(`granary-mount-${volumeHash(VOLUME).slice(0, 12)}-s0`);
      expect(pod?.metadata?.labels).toEqual({
        'app.kubernetes.io/name': 'granary',
        'app.kubernetes.io/component': 'mount',
        'app.kubernetes.io/managed-by': 'granary-node',
        [MOUNT_POD_LABELS.node]: NODE,
        [MOUNT_POD_LABELS.volume]: volumeHash(VOLUME),
      });
      expect(pod?.metadata?.annotations).toEqual({ [MOUNT_POD_ANNOTATIONS.volumeId]: VOLUME, [MOUNT_POD_ANNOTATIONS.stagingTargetPath]: STAGING, [MOUNT_POD_ANNOTATIONS.readOnly]: 'false' });
      expect(pod?.spec).toMatchObject({
        nodeName: NODE,
        restartPolicy: 'Never',
        priorityClassName: 'system-node-critical',
        serviceAccountName: 'granary-mount',
        tolerations: [{ operator: 'Exists' }],
        automountServiceAccountToken: false,
        enableServiceLinks: false,
      });
      const container = pod?.spec?.containers[0];
      expect(container).toMatchObject({ image: 'registry.example/granary:1.2.3', securityContext: { privileged: true } });
      expect(container?.args).toEqual(['mount', 's3://bucket-one/team/data/', paths.mountPoint, '--state-dir', `${STATE_DIR}/${volumeHash(VOLUME)}`, '--uid', '1000']);
      expect(container?.volumeMounts).toEqual(expect.arrayContaining([
        { name: 'dev-fuse', mountPath: '/dev/fuse' },
        { name: 'mount-dir', mountPath: paths.volumeDir, mountPropagation: 'Bidirectional' },
        { name: 'state-dir', mountPath: paths.stateDir },
      ]));
      expect(pod?.spec?.volumes).toEqual(expect.arrayContaining([
        { name: 'mount-dir', hostPath: { path: paths.volumeDir, type: 'DirectoryOrCreate' } },
        { name: 'dev-fuse', hostPath: { path: '/dev/fuse', type: 'CharDevice' } },
      ]));

      expect(mounter.calls).toContainEqual({ method: 'bindMount', source: paths.mountPoint, target: STAGING, readOnly: false });
      expect(record).toMatchObject({ volumeId: VOLUME, stagingTargetPath: STAGING, readOnly: false, logHint: expect.stringContaining('kubectl -n granary logs granary-mount-') });
      expect(pods.describe(VOLUME)).toEqual(record);
    });

    it('puts credentials only in a Secret owned by the Pod, which the Pod reads by key: never argv, the Pod spec or a log line', async () => {
      healthyKubelet();
      const lines: Array<Record<string, unknown>> = [];
      await supervisor().start(request(), capturingLogger(lines));

      const [pod] = [...api.pods.values()];
      const [secret] = [...api.secrets.values()];
      expect(secret?.metadata?.name).toBe(pod?.metadata?.name);
      expect(secret?.metadata?.labels).toEqual(pod?.metadata?.labels);
      expect(secret?.metadata?.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: pod?.metadata?.name, uid: pod?.metadata?.uid }]);
      expect(secret?.stringData).toEqual({
        AWS_ACCESS_KEY_ID: 'AKIDPOD', AWS_SECRET_ACCESS_KEY: SECRET, AWS_ENDPOINT_URL: 'http://s3.example:9000', AWS_REGION: 'eu-west-1', GRANARY_LOG_LEVEL: 'debug',
      });
      expect(JSON.stringify(pod)).not.toContain(SECRET);
      expect(JSON.stringify(pod)).not.toContain('UNRELATED_SECRET');
      expect(JSON.stringify(lines)).not.toContain(SECRET);
      const env = pod?.spec?.containers[0]?.env ?? [];
      expect(env).toContainEqual({ name: 'AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: pod?.metadata?.name, key: 'AWS_SECRET_ACCESS_KEY' } } });
      expect(env).toContainEqual({ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
      expect(env.filter((variable) => variable.value !== undefined)).toEqual([]);
      // The Pod exists before its Secret (the owner reference needs its uid); the kubelet waits for the Secret.
      expect(api.calls.map((call) => call.method)).toEqual(['createPod', 'createSecret']);
    });

    it('gives the Pod the cache token file through its Secret when the mount reads through the cache', async () => {
      healthyKubelet();
      const flags = ['--cache-kubernetes-service', 'granary-cache', '--cache-token-file', '/etc/granary/token/token'];
      await supervisor({ files: { '/etc/granary/token/token': 'cluster-token' } }).start(request({ flags }), log);
      const [pod] = [...api.pods.values()];
      const [secret] = [...api.secrets.values()];
      expect(secret?.stringData?.['cache-token']).toBe('cluster-token');
      expect(pod?.spec?.volumes).toContainEqual({ name: 'cache-token', secret: { secretName: pod?.metadata?.name, items: [{ key: 'cache-token', path: 'token' }], defaultMode: 0o400 } });
      expect(pod?.spec?.containers[0]?.volumeMounts).toContainEqual({ name: 'cache-token', mountPath: '/etc/granary/token', readOnly: true });
      expect(pod?.spec?.containers[0]?.args).toEqual(expect.arrayContaining(flags));
      // It watches the cache's EndpointSlices, so it gets its service account's token.
      expect(pod?.spec?.automountServiceAccountToken).toBe(true);
    });

    it('has a mount that reads through the cache serve its counters on a socket in its state folder, which list() names for the node metrics', async () => {
      healthyKubelet();
      const cached = supervisor({ files: { '/etc/granary/token/token': 'cluster-token' } });
      await cached.start(request({ flags: ['--cache-peers', 'http://10.0.0.1:7070', '--cache-token-file', '/etc/granary/token/token'] }), log);
      const socket = `${paths.stateDir}/metrics.sock`;
      const [pod] = [...api.pods.values()];
      expect(pod?.spec?.containers[0]?.args?.slice(-2)).toEqual(['--cache-metrics-socket', socket]);
      // The state folder is the same host path in the Pod and in the node plugin.
      expect(pod?.spec?.containers[0]?.volumeMounts).toContainEqual({ name: 'state-dir', mountPath: paths.stateDir });
      expect(cached.list()).toEqual([expect.objectContaining({ volumeId: VOLUME, metricsSocket: socket })]);
    });

    it('mounts read-only and binds read-only when asked', async () => {
      healthyKubelet();
      await supervisor().start(request({ readOnly: true }), log);
      const [pod] = [...api.pods.values()];
      expect(pod?.spec?.containers[0]?.args).toContain('--read-only');
      expect(pod?.metadata?.annotations?.[MOUNT_POD_ANNOTATIONS.readOnly]).toBe('true');
      expect(mounter.calls).toContainEqual({ method: 'bindMount', source: paths.mountPoint, target: STAGING, readOnly: true });
    });

    it('unmounts a dead mount an earlier Pod left at the mount point before starting', async () => {
      mounter.add({ source: 's3://bucket-one/team/data/', target: paths.mountPoint, fsType: 'fuse.granary' });
      mounter.markCorrupt(paths.mountPoint);
      healthyKubelet();
      await supervisor().start(request(), log);
      expect(mounter.calls[0]).toEqual({ method: 'unmount', target: paths.mountPoint });
    });

    it('refuses a second start of a staged volume', async () => {
      healthyKubelet();
      const pods = supervisor();
      await pods.start(request(), log);
      await expect(pods.start(request(), log)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
      expect(api.pods.size).toBe(1);
    });

    it('fails with DEADLINE_EXCEEDED, the Pod status and its last log lines when the mount is not live in time, and deletes everything', async () => {
      api.onCreatePod = (pod) => {
        api.setStatus(pod.metadata?.name ?? '', { phase: 'Pending', containerStatuses: [{ name: 'mount', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } }] });
        api.logs.set(pod.metadata?.name ?? '', 'line one\nwaiting for the object store');
      };
      const pods = supervisor({ readyTimeoutMs: 50 });
      const error = await pods.start(request(), log).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CsiError);
      expect(error).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
      expect((error as CsiError).message).toContain('was not ready within 50 ms');
      expect((error as CsiError).message).toContain('Pod status: Pending, container waiting: ContainerCreating');
      expect((error as CsiError).message).toContain('waiting for the object store');
      expect(api.pods.size).toBe(0);
      expect(api.secrets.size).toBe(0);
      expect(pods.describe(VOLUME)).toBeUndefined();
      expect(mounter.calls.filter((call) => call.method === 'bindMount')).toEqual([]);
    });

    it('fails at once with the exit code when the Pod finishes before its mount is live', async () => {
      api.onCreatePod = (pod) => {
        api.setStatus(pod.metadata?.name ?? '', { phase: 'Failed', containerStatuses: [{ name: 'mount', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 2, reason: 'Error' } } }] });
        api.logs.set(pod.metadata?.name ?? '', 'error: the bucket bucket-one does not exist');
      };
      const started = Date.now();
      const error = (await supervisor({ readyTimeoutMs: 10_000 }).start(request(), log).catch((caught: unknown) => caught)) as CsiError;
      expect(Date.now() - started).toBeLessThan(5000);
      expect(error.code).toBe('INTERNAL');
      expect(error.message).toContain('exited before it was ready');
      expect(error.message).toContain('container exited with code 2 (Error)');
      expect(error.message).toContain('the bucket bucket-one does not exist');
      expect(api.pods.size).toBe(0);
      expect(api.secrets.size).toBe(0);
    });

    it('deletes the Pod when its Secret cannot be created, and says what the API answered', async () => {
      healthyKubelet();
      api.failNext('createSecret', new Error('admission webhook denied the request'));
      const error = (await supervisor().start(request(), log).catch((caught: unknown) => caught)) as CsiError;
      expect(error.message).toContain('admission webhook denied the request');
      expect(api.pods.size).toBe(0);
      expect(await mounter.isMountPoint(paths.mountPoint)).toBe('not-mounted');
    });

    it('points at RBAC and the admission policy when the Pod cannot be created', async () => {
      api.failNext('createPod', new Error('pods is forbidden: User "system:serviceaccount:granary:granary-node" cannot create resource "pods"'));
      const error = (await supervisor().start(request(), log).catch((caught: unknown) => caught)) as CsiError;
      expect(error.code).toBe('INTERNAL');
      expect(error.message).toMatch(/forbidden.*check the node plugin's RBAC and the chart's mount Pod admission policy/);
      expect(api.secrets.size).toBe(0);
    });
  });

  describe('stop', () => {
    it('unmounts the staging bind, deletes the Pod and its Secret and waits for the mount to go', async () => {
      healthyKubelet();
      const pods = supervisor();
      await pods.start(request(), log);
      const name = [...api.pods.keys()][0];
      mounter.calls.length = 0;
      expect(await pods.stop(VOLUME, log)).toBe(true);
      expect(mounter.calls[0]).toEqual({ method: 'unmount', target: STAGING });
      expect(api.calls.slice(-2)).toEqual([{ method: 'deletePod', name, gracePeriodSeconds: 0 }, { method: 'deleteSecret', name }]);
      expect(await mounter.isMountPoint(paths.mountPoint)).toBe('not-mounted');
      expect(pods.describe(VOLUME)).toBeUndefined();
      expect(await pods.stop(VOLUME, log)).toBe(false);
    });

    it('detaches a mount the Pod left behind (killed before it could unmount)', async () => {
      healthyKubelet();
      api.onDeletePod = () => mounter.markCorrupt(paths.mountPoint);
      const pods = supervisor();
      await pods.start(request(), log);
      await pods.stop(VOLUME, log);
      expect(mounter.calls.at(-1)).toEqual({ method: 'unmount', target: paths.mountPoint });
      expect(await mounter.isMountPoint(paths.mountPoint)).toBe('not-mounted');
    });
  });

  it('mounts under a path the kubelet counts as its own, so it unstages the staging path that binds it', () => {
    // The kubelet refuses to unmount a staging path other mounts of it refer to unless their paths contain its part from /plugins/kubernetes.io/.
    expect(paths.mountPoint).toBe(`${POD_DIR}/${volumeHash(VOLUME)}/plugins/kubernetes.io/csi/csi.granary.dev/abc/globalmount`);
    expect(mountPodPaths(POD_DIR, STATE_DIR, VOLUME, '/elsewhere/staging').mountPoint).toBe(`${POD_DIR}/${volumeHash(VOLUME)}/mnt`);
  });

  describe('adopt', () => {
    /** A mount Pod an earlier node plugin made, with its mount and (when `bound`) the staging bind. */
    function leftover(name: string, volumeId: string, phase: string, options: { live?: boolean; bound?: boolean; node?: string; staging?: string } = {}): V1Pod {
      const staging = options.staging ?? stagingOf(volumeId);
      const own = mountPodPaths(POD_DIR, STATE_DIR, volumeId, staging);
      const pod: V1Pod = {
        metadata: {
          name,
          labels: { 'app.kubernetes.io/name': 'granary', 'app.kubernetes.io/component': 'mount', 'app.kubernetes.io/managed-by': 'granary-node', [MOUNT_POD_LABELS.node]: nodeLabelValue(options.node ?? NODE), [MOUNT_POD_LABELS.volume]: volumeHash(volumeId) },
          annotations: { [MOUNT_POD_ANNOTATIONS.volumeId]: volumeId, [MOUNT_POD_ANNOTATIONS.stagingTargetPath]: staging, [MOUNT_POD_ANNOTATIONS.readOnly]: 'true' },
        },
        spec: { nodeName: options.node ?? NODE, containers: [{ name: 'mount' }] },
        status: { phase },
      };
      api.addPod(pod);
      api.secrets.set(name, { metadata: { name } });
      if (options.live !== undefined) {
        const entry = mounter.add({ source: 's3://b/', target: own.mountPoint, fsType: 'fuse.granary', readOnly: true });
        if (!options.live) mounter.markCorrupt(own.mountPoint);
        if (options.bound) mounter.add({ source: 's3://b/', target: staging, fsType: 'fuse.granary', device: entry.device, readOnly: true });
      }
      return pod;
    }

    it('adopts a Running Pod whose mount is live and bound to its staging path; a later stop deletes it', async () => {
      leftover('granary-mount-live', 'bucket-one/live', 'Running', { live: true, bound: true, staging: STAGING });
      const lines: Array<Record<string, unknown>> = [];
      const pods = supervisor();
      await pods.adopt(capturingLogger(lines));
      expect(pods.describe('bucket-one/live')).toMatchObject({ volumeId: 'bucket-one/live', stagingTargetPath: STAGING, readOnly: true });
      expect(api.calls).toEqual([]);
      expect(lines.map((line) => line.msg)).toEqual(expect.arrayContaining([expect.stringContaining('adopted a mount Pod'), 'mount Pods on this node: 1 adopted, 0 stale deleted']));
      expect(await pods.stop('bucket-one/live', log)).toBe(true);
      expect(api.pods.size).toBe(0);
      expect(api.secrets.size).toBe(0);
    });

    it('deletes stale Pods with their Secrets and dead mounts: finished, mount dead, or never bound', async () => {
      leftover('granary-mount-failed', 'bucket-one/failed', 'Failed', { live: false });
      leftover('granary-mount-dead', 'bucket-one/dead', 'Running', { live: false, bound: true });
      leftover('granary-mount-unbound', 'bucket-one/unbound', 'Running', { live: true, bound: false });
      leftover('granary-mount-pending', 'bucket-one/pending', 'Pending');
      const lines: Array<Record<string, unknown>> = [];
      const pods = supervisor();
      await pods.adopt(capturingLogger(lines));
      expect(api.pods.size).toBe(0);
      expect(api.secrets.size).toBe(0);
      for (const volume of ['failed', 'dead', 'unbound']) expect(await mounter.isMountPoint(mountPodPaths(POD_DIR, STATE_DIR, `bucket-one/${volume}`, stagingOf(`bucket-one/${volume}`)).mountPoint)).toBe('not-mounted');
      expect(pods.describe('bucket-one/unbound')).toBeUndefined();
      const reasons = lines.filter((line) => line.msg !== undefined && String(line.msg).startsWith('deleting a stale mount Pod')).map((line) => line.reason);
      expect(reasons).toEqual([
        expect.stringContaining('it is Failed'),
        expect.stringContaining('is a dead mount'),
        expect.stringContaining('is not bound to its mount'),
        expect.stringContaining('it is Pending'),
      ]);
      expect(lines.at(-1)?.msg).toBe('mount Pods on this node: 0 adopted, 4 stale deleted');
    });

    it("leaves other nodes' Pods and Pods being deleted alone", async () => {
      leftover('granary-mount-elsewhere', 'bucket-one/elsewhere', 'Failed', { node: 'other-node' });
      const terminating = leftover('granary-mount-terminating', 'bucket-one/terminating', 'Running');
      api.pods.get('granary-mount-terminating')!.metadata!.deletionTimestamp = new Date();
      await supervisor().adopt(log);
      expect([...api.pods.keys()].sort()).toEqual(['granary-mount-elsewhere', terminating.metadata?.name]);
      expect(api.calls).toEqual([]);
    });

    it('says to check RBAC when the Pods cannot be listed', async () => {
      api.listPods = async () => {
        throw new Error('pods is forbidden');
      };
      await expect(supervisor().adopt(log)).rejects.toThrow(/cannot list the mount Pods of node gpu-node-7 in namespace granary: pods is forbidden; check the node plugin's RBAC/);
    });
  });

  describe('names and labels', () => {
    it('labels a node by its name when that is a valid label value, else by a hash', () => {
      expect(nodeLabelValue('gpu-node-7')).toBe('gpu-node-7');
      const long = `node-${'x'.repeat(70)}.example.com`;
      expect(nodeLabelValue(long)).toMatch(/^sha256-[0-9a-f]{32}$/);
    });

    it('describes a Pod that no longer exists', () => {
      expect(describePodStatus(undefined)).toBe('the Pod no longer exists');
    });
  });
});
