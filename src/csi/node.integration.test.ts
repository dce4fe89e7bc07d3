import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { builtCli } from '../../e2e/support/built-cli';
import { createBucket, s3Client, testS3 } from '../../e2e/support/s3-server';
import { parseCsiConfig } from '../config/csi';
import { silentLogger } from '../log/logger';
import { Driver } from './driver';
import { createIdentityService } from './identity';
import { LinuxMounter } from './mount/linux';
import { cacheFlags } from './mount/mount-arguments';
import { MountProcesses } from './mount/mount-process';
import { findMount, isReadOnlyMount } from './mount/mounter';
import { createNodeService } from './node';
import { csiPackage } from './proto';

jest.setTimeout(60_000);

type NodeClient = InstanceType<ReturnType<typeof csiPackage>['Node']>;

/** Calls one unary method of the real gRPC client. */
function call<Response>(client: NodeClient, method: string, request: object): Promise<Response> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (r: object, cb: (e: grpc.ServiceError | null, r: Response) => void) => void>)[method]!.call(client, request, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

async function failure(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}

const capability = (mode: string) => ({ mount: {}, access_mode: { mode } });

// Real mounts as root, the real built `granary mount`, the shared real S3 server, a real gRPC driver.
describe('Node service through gRPC with real granary mounts', () => {
  const s3 = testS3();
  const cli = builtCli(); // throws with the fix when dist/ is missing
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-node-it-'));
  const stateDir = path.join(dir, 'state');
  const endpoint = `unix://${path.join(dir, 'csi.sock')}`;
  const mounter = new LinuxMounter();
  const processes = new MountProcesses({ mounter, cliScript: cli, stateDir, readyTimeoutMs: 20_000, stopGraceMs: 5_000, baseEnvironment: { PATH: process.env.PATH } });
  const driver = new Driver(
    { identity: createIdentityService({ controller: false }) as never, node: createNodeService({ kubeletDir: dir, nodeId: 'it-node', mounter, mountProcesses: processes }) as never },
    silentLogger(),
  );
  const secrets = { accessKeyID: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, endpoint: s3.endpoint, region: s3.region };
  let client: NodeClient;
  let bucket: string;
  let volumeId: string;

  const stagingPath = (name: string) => path.join(dir, 'staging', name);
  const targetPath = (name: string) => path.join(dir, 'pods', name, 'mount');
  const stage = (staging: string, mode = 'MULTI_NODE_MULTI_WRITER', extra: object = {}) =>
    call(client, 'NodeStageVolume', { volume_id: volumeId, staging_target_path: staging, volume_capability: capability(mode), secrets, ...extra });
  const publish = (staging: string, target: string, readonly: boolean, mode = 'MULTI_NODE_MULTI_WRITER') =>
    call(client, 'NodePublishVolume', { volume_id: volumeId, staging_target_path: staging, target_path: target, volume_capability: capability(mode), readonly });
  const unpublish = (target: string) => call(client, 'NodeUnpublishVolume', { volume_id: volumeId, target_path: target });
  const unstage = (staging: string, id = volumeId) => call(client, 'NodeUnstageVolume', { volume_id: id, staging_target_path: staging });
  const mountsUnder = async (root: string) => (await mounter.listMounts()).filter((m) => m.mountPoint === root || m.mountPoint.startsWith(`${root}/`));
  const mountsUnderDir = () => mountsUnder(dir);
  // A host directory outside the kubelet directory (`dir`), with a mount of its own that nothing may touch.
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-node-it-outside-'));
  const hostMount = path.join(outside, 'host-mount');

  beforeAll(async () => {
    bucket = await createBucket(s3, 'node');
    volumeId = `${bucket}/team/data`;
    const sdk = s3Client(s3);
    try {
      await sdk.send(new PutObjectCommand({ Bucket: bucket, Key: 'team/data/hello.txt', Body: 'hello from s3' }));
      await sdk.send(new PutObjectCommand({ Bucket: bucket, Key: 'team/data/sub/nested.txt', Body: 'nested' }));
    } finally {
      sdk.destroy();
    }
    fs.mkdirSync(path.join(dir, 'staging'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'pods'), { recursive: true });
    fs.mkdirSync(hostMount);
    await mounter.mount('granary-it-host', hostMount, 'tmpfs', ['size=1m']);
    fs.writeFileSync(path.join(hostMount, 'precious'), 'host data');
    await driver.start(endpoint);
    client = new (csiPackage().Node)(endpoint, grpc.credentials.createInsecure());
  });

  // A second node whose mounts read through a cluster cache that is down (nothing listens on port 9).
  const tokenFile = path.join(dir, 'cluster-token');
  const CLUSTER_TOKEN = 'integration-cluster-token-0123456789abcdef';
  const cacheProcesses = new MountProcesses({ mounter, cliScript: cli, stateDir: path.join(dir, 'cache-node-state'), readyTimeoutMs: 20_000, stopGraceMs: 5_000, baseEnvironment: { PATH: process.env.PATH } });
  const cacheConfig = parseCsiConfig({ mode: 'node', nodeId: 'it-cache-node', cache: { peers: ['http://127.0.0.1:9'], tokenFile } });
  const cacheNode = createNodeService({ kubeletDir: dir, nodeId: 'it-cache-node', mounter, mountProcesses: cacheProcesses, cacheFlags: cacheFlags(cacheConfig.cache) });
  const cmdlineOf = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

  afterAll(async () => {
    client?.close();
    await driver.stop();
    await processes.stopAll(silentLogger());
    await cacheProcesses.stopAll(silentLogger());
    // Whatever a failed test left: unmount innermost first (lazily if dead or busy), then delete.
    for (const entry of (await mountsUnderDir()).reverse()) await mounter.unmount(entry.mountPoint).catch(() => undefined);
    const left = await mountsUnderDir();
    for (const entry of (await mountsUnder(outside)).reverse()) await mounter.unmount(entry.mountPoint).catch(() => undefined);
    const leftOutside = await mountsUnder(outside);
    fs.rmSync(dir, { recursive: true, force: true });
    if (leftOutside.length === 0) fs.rmSync(outside, { recursive: true, force: true });
    expect(left).toEqual([]);
    expect(leftOutside).toEqual([]);
  });

  it('stages the volume: objects put with the SDK are readable under the staging path', async () => {
    const staging = stagingPath('main');
    fs.mkdirSync(staging);
    await stage(staging);
    expect(fs.readFileSync(path.join(staging, 'hello.txt'), 'utf8')).toBe('hello from s3');
    expect(fs.readFileSync(path.join(staging, 'sub', 'nested.txt'), 'utf8')).toBe('nested');
    expect(findMount(await mounter.listMounts(), staging)?.fsType).toBe('fuse.granary');
  });

  it('keeps the credentials out of the mount process argv and its log', async () => {
    const record = processes.describe(volumeId);
    expect(record).toBeDefined();
    const cmdline = fs.readFileSync(`/proc/${record!.pid}/cmdline`, 'utf8');
    expect(cmdline).toContain('mount');
    expect(cmdline).not.toContain(s3.secretAccessKey);
    expect(cmdline).not.toContain(s3.accessKeyId);
    const environ = fs.readFileSync(`/proc/${record!.pid}/environ`, 'utf8');
    expect(environ).toContain(`AWS_SECRET_ACCESS_KEY=${s3.secretAccessKey}`);
    expect(fs.readFileSync(record!.logPath, 'utf8')).not.toContain(s3.secretAccessKey);
  });

  it('answers OK to the same stage again without a second process', async () => {
    const before = processes.describe(volumeId)?.pid;
    await stage(stagingPath('main'));
    expect(processes.describe(volumeId)?.pid).toBe(before);
  });

  it('publishes read-only: reads work, writes fail with EROFS', async () => {
    const target = targetPath('reader');
    await publish(stagingPath('main'), target, true);
    expect(fs.readFileSync(path.join(target, 'hello.txt'), 'utf8')).toBe('hello from s3');
    expect(() => fs.writeFileSync(path.join(target, 'new.txt'), 'x')).toThrow(expect.objectContaining({ code: 'EROFS' }));
    const entry = findMount(await mounter.listMounts(), target);
    expect(entry && isReadOnlyMount(entry)).toBe(true);
    // Same target, same flag: OK; other flag: ALREADY_EXISTS.
    await publish(stagingPath('main'), target, true);
    expect((await failure(publish(stagingPath('main'), target, false))).code).toBe(grpc.status.ALREADY_EXISTS);
  });

  it('publishes read-write', async () => {
    const target = targetPath('writer');
    await publish(stagingPath('main'), target, false);
    const entry = findMount(await mounter.listMounts(), target);
    expect(entry && isReadOnlyMount(entry)).toBe(false);
    expect(fs.readdirSync(target).sort()).toEqual(['hello.txt', 'sub']);
  });

  it('unpublishes and unstages, leaving nothing mounted and no process', async () => {
    const pid = processes.describe(volumeId)!.pid;
    await unpublish(targetPath('reader'));
    await unpublish(targetPath('writer'));
    expect(fs.existsSync(targetPath('reader'))).toBe(false);
    await unpublish(targetPath('writer')); // idempotent
    await unstage(stagingPath('main'));
    await unstage(stagingPath('main')); // idempotent
    expect(await mountsUnderDir()).toEqual([]);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('cleans up after a SIGKILLed mount process (dead FUSE mount, ENOTCONN)', async () => {
    const staging = stagingPath('killed');
    const target = targetPath('killed');
    fs.mkdirSync(staging);
    await stage(staging, 'MULTI_NODE_READER_ONLY');
    // A read-only stage shows `ro` in mountinfo: the same stage is OK, a read-write one is ALREADY_EXISTS.
    await stage(staging, 'MULTI_NODE_READER_ONLY');
    expect((await failure(stage(staging, 'MULTI_NODE_MULTI_WRITER'))).code).toBe(grpc.status.ALREADY_EXISTS);
    await publish(staging, target, true, 'MULTI_NODE_READER_ONLY');
    const pid = processes.describe(volumeId)!.pid;
    // The mount process is the holder of the FUSE connection: killed, its serving process ends with it (when the pipe
    // between them closes), and with both the connection.
    process.kill(pid, 'SIGKILL');
    // readdir, not stat: the kernel may answer stat of the root from its attribute cache, OPENDIR always reaches the process.
    const readdirError = (): string | undefined => {
      try {
        fs.readdirSync(staging);
        return undefined;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code;
      }
    };
    for (let i = 0; i < 500 && readdirError() !== 'ENOTCONN'; i++) await new Promise((r) => setTimeout(r, 20));
    expect(readdirError()).toBe('ENOTCONN');
    expect(await mounter.isMountPoint(target)).toBe('corrupt');
    await unpublish(target);
    await unstage(staging);
    expect(await mountsUnderDir()).toEqual([]);
    expect(fs.existsSync(target)).toBe(false);
  });

  it('restages over a dead mount', async () => {
    const staging = stagingPath('restage');
    fs.mkdirSync(staging);
    await stage(staging);
    process.kill(processes.describe(volumeId)!.pid, 'SIGKILL');
    for (let i = 0; i < 100 && processes.describe(volumeId); i++) await new Promise((r) => setTimeout(r, 20));
    await stage(staging);
    expect(fs.readFileSync(path.join(staging, 'hello.txt'), 'utf8')).toBe('hello from s3');
    await unstage(staging);
    expect(await mountsUnderDir()).toEqual([]);
  });

  it.each([
    ['a bucket that does not exist', () => ({ volume_id: `nobucket-${Date.now().toString(36)}/x` })],
    ['bad credentials', () => ({ secrets: { ...secrets, secretAccessKey: 'wrong-secret-value' } })],
  ])('fails to stage with %s: the error quotes the mount log and nothing is left mounted', async (_, overrides) => {
    const staging = stagingPath(`failing-${Math.random().toString(36).slice(2, 8)}`);
    fs.mkdirSync(staging);
    const extra = overrides();
    const error = await failure(stage(staging, 'MULTI_NODE_MULTI_WRITER', extra));
    expect(error.code).not.toBe(grpc.status.OK);
    expect(error.details).toMatch(/granary mount of volume .* (exited|was not ready)/);
    expect(error.details).toMatch(/last lines of its log:\n/);
    expect(error.details).toContain(`see the mount log at ${stateDir}/`);
    expect(error.details).not.toContain(s3.secretAccessKey);
    expect(error.details).not.toContain('wrong-secret-value');
    expect(await mounter.isMountPoint(staging)).toBe('not-mounted');
    const id = 'volume_id' in extra ? String(extra.volume_id) : volumeId;
    expect(processes.describe(id)).toBeUndefined();
    // Every file the node service and its mounts keep (logs, upload records, session journals).
    const files = (fs.readdirSync(stateDir, { recursive: true }) as string[]).map((file) => path.join(stateDir, file)).filter((file) => fs.statSync(file).isFile());
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect(fs.readFileSync(file, 'utf8')).not.toContain('wrong-secret-value');
  });

  it('applies the StorageClass mount options: file-mode and uid show on every file of the real mount', async () => {
    const staging = stagingPath('options');
    fs.mkdirSync(staging);
    await stage(staging, 'MULTI_NODE_MULTI_WRITER', { volume_context: { bucket, prefix: 'team/data/', cache: 'true', mountOptions: 'file-mode=0640,uid=1234' } });
    const stat = fs.statSync(path.join(staging, 'hello.txt'));
    expect(stat.mode & 0o7777).toBe(0o640);
    expect(stat.uid).toBe(1234);
    expect(stat.gid).toBe(0);
    // Directories keep their default mode: only file-mode was asked for.
    expect(fs.statSync(path.join(staging, 'sub')).mode & 0o7777).toBe(0o777);
    // This node names no cache: no --cache flag even though the volume allows it.
    const cmdline = cmdlineOf(processes.describe(volumeId)!.pid);
    expect(cmdline).toEqual(expect.arrayContaining(['--file-mode', '0640', '--uid', '1234']));
    expect(cmdline.some((arg) => arg.startsWith('--cache'))).toBe(false);
    await unstage(staging);
    expect(await mountsUnderDir()).toEqual([]);
  });

  it('refuses a volume whose mount options granary does not know, starting nothing', async () => {
    const staging = stagingPath('bad-options');
    fs.mkdirSync(staging);
    const error = await failure(stage(staging, 'MULTI_NODE_MULTI_WRITER', { volume_context: { mountOptions: 'uid=1234,allow-other' } }));
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toContain('unknown option "allow-other"; granary accepts uid=..., gid=..., file-mode=..., dir-mode=..., log-level=...');
    expect(processes.describe(volumeId)).toBeUndefined();
    expect(await mounter.isMountPoint(staging)).toBe('not-mounted');
  });

  it('on a node with a cluster cache: mounts read through it (and from the object store while it is down), unless the volume turns it off', async () => {
    fs.writeFileSync(tokenFile, CLUSTER_TOKEN, { mode: 0o600 });
    const context = { log: silentLogger() };
    const request = (staging: string, cache: string) => ({
      volume_id: volumeId,
      publish_context: {},
      staging_target_path: staging,
      volume_capability: { access_type: 'mount' as const, mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'MULTI_NODE_READER_ONLY' as const } },
      secrets,
      volume_context: { bucket, prefix: 'team/data/', cache },
    });

    const cached = stagingPath('cached');
    fs.mkdirSync(cached);
    await cacheNode.NodeStageVolume(request(cached, 'true'), context);
    const cachedRecord = cacheProcesses.describe(volumeId)!;
    const withCache = cmdlineOf(cachedRecord.pid);
    expect(withCache).toEqual(expect.arrayContaining(['--cache-peers', 'http://127.0.0.1:9', '--cache-token-file', tokenFile, '--cache-block-size', String(4 * 1024 * 1024)]));
    expect(withCache.join(' ')).not.toContain(CLUSTER_TOKEN);
    // No cache server answers: a read never fails because of the cache, it comes from the object store.
    expect(fs.readFileSync(path.join(cached, 'hello.txt'), 'utf8')).toBe('hello from s3');
    expect(fs.readFileSync(path.join(cached, 'sub', 'nested.txt'), 'utf8')).toBe('nested');
    await cacheNode.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: cached }, context);
    // The mount did open the cluster cache (its log, complete once it has exited, says no server was ready).
    expect(fs.readFileSync(cachedRecord.logPath, 'utf8')).toContain('no cache server is ready yet');

    const uncached = stagingPath('uncached');
    fs.mkdirSync(uncached);
    await cacheNode.NodeStageVolume(request(uncached, 'false'), context);
    const withoutCache = cmdlineOf(cacheProcesses.describe(volumeId)!.pid);
    expect(withoutCache.some((arg) => arg.startsWith('--cache'))).toBe(false);
    expect(fs.readFileSync(path.join(uncached, 'hello.txt'), 'utf8')).toBe('hello from s3');
    await cacheNode.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: uncached }, context);
    expect(await mountsUnderDir()).toEqual([]);
  });

  /** The host mount outside the kubelet directory is still there, holding what it held. */
  async function hostMountUntouched(): Promise<void> {
    expect(findMount(await mounter.listMounts(), hostMount)).toMatchObject({ fsType: 'tmpfs', source: 'granary-it-host' });
    expect(fs.readdirSync(hostMount)).toEqual(['precious']);
    expect(fs.readFileSync(path.join(hostMount, 'precious'), 'utf8')).toBe('host data');
    expect(fs.readdirSync(outside)).toEqual(['host-mount']);
  }

  it('refuses to stage outside the kubelet directory, mounting nothing there', async () => {
    const elsewhere = path.join(outside, 'etc');
    fs.mkdirSync(elsewhere);
    try {
      const error = await failure(stage(elsewhere));
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(error.details).toContain(`staging_target_path ${elsewhere} is not below the kubelet directory ${dir}`);
      expect(await mountsUnder(outside)).toEqual([expect.objectContaining({ mountPoint: hostMount })]);
      expect(processes.describe(volumeId)).toBeUndefined();
    } finally {
      // Had the stage been made, it would be undone here, so the next test starts clean.
      await unstage(elsewhere).catch(() => undefined);
      await mounter.unmount(elsewhere).catch(() => undefined);
      fs.rmdirSync(elsewhere);
    }
    await hostMountUntouched();
  });

  it('refuses to publish to a target that is a symbolic link: no bind lands where it points', async () => {
    const staging = stagingPath('links');
    fs.mkdirSync(staging);
    await stage(staging);
    const target = targetPath('linked');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.symlinkSync(hostMount, target);
    const error = await failure(publish(staging, target, false));
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toContain(`target_path ${target} is a symbolic link (to ${hostMount})`);
    expect(await mountsUnder(outside)).toEqual([expect.objectContaining({ mountPoint: hostMount, fsType: 'tmpfs' })]);
    fs.unlinkSync(target);
    await unstage(staging);
    await hostMountUntouched();
  });

  it('unpublishes a target swapped for a symbolic link after publish: the bind is gone, nothing outside is touched, a retry answers OK', async () => {
    const staging = stagingPath('swap');
    fs.mkdirSync(staging);
    await stage(staging);
    const target = targetPath('swapped');
    await publish(staging, target, false);
    const staged = findMount(await mounter.listMounts(), staging)!;
    expect(findMount(await mounter.listMounts(), target)?.device).toBe(staged.device);
    // The swap, as a process in another mount namespace (a container runtime, say) makes it: there the target is
    // no mount point once unmounted, so rmdir works, and the kernel detaches the bind in every namespace.
    const swap = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'umount "$1" && rmdir "$1" && ln -s "$2" "$1"', 'swap', target, hostMount], { encoding: 'utf8' });
    expect({ status: swap.status, stderr: swap.stderr }).toEqual({ status: 0, stderr: '' });
    expect(fs.readlinkSync(target)).toBe(hostMount);
    await unpublish(target);
    await unpublish(target);
    expect(() => fs.lstatSync(target)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    // Of the volume's filesystem only the staging mount is left: no bind of it anywhere, in or out of the kubelet directory.
    expect((await mounter.listMounts()).filter((m) => m.device === staged.device).map((m) => m.mountPoint)).toEqual([staging]);
    await hostMountUntouched();
    await unstage(staging);
    expect(await mountsUnderDir()).toEqual([]);
  });

  it('refuses the volume ID bucket// (an empty prefix: the whole bucket) unless the volume allows it', async () => {
    const staging = stagingPath('whole');
    fs.mkdirSync(staging);
    const error = await failure(call(client, 'NodeStageVolume', { volume_id: `${bucket}//`, staging_target_path: staging, volume_capability: capability('MULTI_NODE_READER_ONLY'), secrets }));
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toContain(`volume_id "${bucket}//" has an empty prefix: it would mount all of bucket ${bucket}`);
    expect(error.details).toContain('allowWholeBucket: "true"');
    expect(processes.describe(`${bucket}//`)).toBeUndefined();
    expect(await mounter.isMountPoint(staging)).toBe('not-mounted');
    // Allowed explicitly, it is the bucket's root: the volume's prefix is a directory in it.
    await call(client, 'NodeStageVolume', { volume_id: `${bucket}//`, staging_target_path: staging, volume_capability: capability('MULTI_NODE_READER_ONLY'), secrets, volume_context: { allowWholeBucket: 'true' } });
    expect(fs.readdirSync(staging)).toEqual(['team']);
    await unstage(staging, `${bucket}//`);
    expect(await mountsUnderDir()).toEqual([]);
  });
});
