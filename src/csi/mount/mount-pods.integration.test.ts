// MountPods with real mounts: a stand-in kubelet runs each mount Pod's container as a process of this
// machine (the Pod's args, its environment resolved from its Secret by key, SIGTERM on delete), so the
// real built `granary mount` reads the shared S3 server with the credentials the Secret carries, its
// FUSE mount appears at the Pod's mount point (where Bidirectional propagation puts it on a node), and
// LinuxMounter binds it onto the staging path. A second MountPods plays the restarted node plugin.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { V1Pod } from '@kubernetes/client-node';
import { builtCli } from '../../../e2e/support/built-cli';
import { createBucket, s3Client, testS3 } from '../../../e2e/support/s3-server';
import { silentLogger } from '../../log/logger';
import { FakePodApi } from './fake-pod-api';
import { LinuxMounter } from './linux';
import { mountPodPaths } from './mount-pod-spec';
import { MountPods } from './mount-pods';
import type { MountRequest } from './supervisor';

jest.setTimeout(60_000);

const log = silentLogger();

/** Runs Pods as processes: starts a Pod's container once its Secret exists, reports Running, then Failed or Succeeded when it exits. */
class ProcessKubelet {
  readonly containers = new Map<string, ChildProcess>();

  constructor(
    private readonly api: FakePodApi,
    private readonly cli: string,
  ) {
    api.onCreatePod = (pod) => this.whenSecretExists(pod);
    api.onDeletePod = (pod) => this.containers.get(pod.metadata?.name ?? '')?.kill('SIGTERM');
  }

  /** SIGKILLs a Pod's container, as the OOM killer would. */
  kill(name: string): void {
    this.containers.get(name)?.kill('SIGKILL');
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.containers.values()].map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    })));
  }

  private whenSecretExists(pod: V1Pod): void {
    const name = pod.metadata?.name ?? '';
    const secret = this.api.secrets.get(name);
    if (!secret) {
      setTimeout(() => this.whenSecretExists(pod), 10);
      return;
    }
    const container = pod.spec?.containers[0];
    const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
    for (const variable of container?.env ?? []) {
      const key = variable.valueFrom?.secretKeyRef?.key;
      if (key !== undefined) env[variable.name] = secret.stringData?.[key] ?? '';
      else if (variable.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[variable.name] = this.api.namespace;
    }
    const child = spawn(process.execPath, [this.cli, ...(container?.args ?? [])], { env, stdio: 'ignore' });
    this.containers.set(name, child);
    this.api.setStatus(name, { phase: 'Running' });
    child.once('exit', (code) => this.api.setStatus(name, { phase: code === 0 ? 'Succeeded' : 'Failed' }));
  }
}

describe('MountPods with real granary mounts run by a stand-in kubelet', () => {
  const s3 = testS3();
  const cli = builtCli();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-mount-pods-it-'));
  const podDir = path.join(dir, 'kubelet', 'plugins', 'csi.granary.dev', 'mounts');
  const stateDir = path.join(dir, 'state');
  const staging = path.join(dir, 'kubelet', 'staging');
  const mounter = new LinuxMounter();
  const api = new FakePodApi('granary');
  const kubelet = new ProcessKubelet(api, cli);
  let bucket: string;

  const supervisor = () =>
    new MountPods({
      api,
      mounter,
      template: { image: 'granary:it', nodeName: 'it-node', priorityClassName: '', terminationGracePeriodSeconds: 5 },
      podDir,
      stateDir,
      readyTimeoutMs: 20_000,
      pollMs: 50,
      unmountMarginMs: 2000,
      baseEnvironment: {},
    });

  const request = (): MountRequest => ({
    volumeId: `${bucket}/models`,
    location: { bucket, prefix: 'models/' },
    stagingTargetPath: staging,
    readOnly: true,
    settings: { endpoint: s3.endpoint, region: s3.region, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } },
    flags: [],
  });

  beforeAll(async () => {
    bucket = await createBucket(s3, 'mountpods');
    const sdk = s3Client(s3);
    try {
      await sdk.send(new PutObjectCommand({ Bucket: bucket, Key: 'models/weights.bin', Body: 'the model' }));
    } finally {
      sdk.destroy();
    }
    fs.mkdirSync(staging, { recursive: true });
  });

  afterAll(async () => {
    await kubelet.stopAll();
    for (const target of [staging, mountPodPaths(podDir, stateDir, `${bucket}/models`).mountPoint]) await mounter.unmount(target).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stages through a Pod whose only credentials are in its Secret, is adopted by a restarted plugin, and unstages cleanly', async () => {
    const paths = mountPodPaths(podDir, stateDir, `${bucket}/models`);
    const first = supervisor();
    await first.start(request(), log);
    expect(fs.readFileSync(path.join(staging, 'weights.bin'), 'utf8')).toBe('the model');
    const [pod] = [...api.pods.values()];
    expect(JSON.stringify(pod)).not.toContain(s3.secretAccessKey);
    const entry = (await mounter.listMounts()).find((mount) => mount.mountPoint === staging);
    expect(entry?.fsType).toBe('fuse.granary');
    expect(entry?.mountOptions).toContain('ro');

    // A new node plugin: the volume is still served, and the Pod is adopted rather than replaced.
    const second = supervisor();
    await second.adopt(log);
    expect(second.describe(`${bucket}/models`)).toMatchObject({ stagingTargetPath: staging, readOnly: true });
    expect(fs.readFileSync(path.join(staging, 'weights.bin'), 'utf8')).toBe('the model');

    await second.stop(`${bucket}/models`, log);
    expect(await mounter.isMountPoint(staging)).toBe('not-mounted');
    expect(await mounter.isMountPoint(paths.mountPoint)).toBe('not-mounted');
    expect(api.pods.size).toBe(0);
    expect(api.secrets.size).toBe(0);
  });

  it('deletes a Pod killed while no plugin ran and detaches its dead mount, so the volume can be staged afresh', async () => {
    const paths = mountPodPaths(podDir, stateDir, `${bucket}/models`);
    await supervisor().start(request(), log);
    const [name] = [...api.pods.keys()];
    kubelet.kill(name ?? '');
    for (let i = 0; i < 100 && (await mounter.isMountPoint(paths.mountPoint)) === 'mounted'; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await mounter.isMountPoint(paths.mountPoint)).toBe('corrupt');

    const restarted = supervisor();
    await restarted.adopt(log);
    expect(api.pods.size).toBe(0);
    expect(await mounter.isMountPoint(paths.mountPoint)).toBe('not-mounted');
    // What NodeStage does with the dead staging bind, then a new Pod.
    await mounter.unmount(staging);
    await restarted.start(request(), log);
    expect(fs.readFileSync(path.join(staging, 'weights.bin'), 'utf8')).toBe('the model');
    await restarted.stop(`${bucket}/models`, log);
  });
});
