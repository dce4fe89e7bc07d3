import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { silentLogger } from '../log/logger';
import { CsiError } from './errors';
import type { NodePublishVolumeRequest__Output } from './generated/csi/v1/NodePublishVolumeRequest';
import type { NodeStageVolumeRequest__Output } from './generated/csi/v1/NodeStageVolumeRequest';
import type { VolumeCapability__Output } from './generated/csi/v1/VolumeCapability';
import { InFlight } from './inflight';
import { FakeMounter, FakeMountProcesses } from './mount/fake';
import { findMount } from './mount/mounter';
import { createNodeService, type NodeService } from './node';

const context = { log: silentLogger() };
const VOLUME = 'bucket-one/team/data';

function capability(mode: string = 'SINGLE_NODE_WRITER', accessType: 'mount' | 'block' = 'mount'): VolumeCapability__Output {
  return {
    ...(accessType === 'mount' ? { mount: { fs_type: '', mount_flags: [], volume_mount_group: '' } } : { block: {} }),
    access_type: accessType,
    access_mode: { mode: mode as never },
  };
}

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CsiError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('Node service', () => {
  let dir: string;
  let staging: string;
  let target: string;
  let mounter: FakeMounter;
  let processes: FakeMountProcesses;
  let node: NodeService;

  const stageRequest = (overrides: Partial<NodeStageVolumeRequest__Output> = {}): NodeStageVolumeRequest__Output => ({
    volume_id: VOLUME,
    publish_context: {},
    staging_target_path: staging,
    volume_capability: capability(),
    secrets: { accessKeyID: 'AKID', secretAccessKey: 'SECRET', endpoint: 'http://127.0.0.1:9000' },
    volume_context: {},
    ...overrides,
  });

  const publishRequest = (overrides: Partial<NodePublishVolumeRequest__Output> = {}): NodePublishVolumeRequest__Output => ({
    volume_id: VOLUME,
    publish_context: {},
    staging_target_path: staging,
    target_path: target,
    volume_capability: capability(),
    readonly: false,
    secrets: {},
    volume_context: {},
    ...overrides,
  });

  const stage = (overrides?: Partial<NodeStageVolumeRequest__Output>) => node.NodeStageVolume(stageRequest(overrides), context);
  const publish = (overrides?: Partial<NodePublishVolumeRequest__Output>) => node.NodePublishVolume(publishRequest(overrides), context);
  const unpublish = (targetPath = target, volumeId = VOLUME) => node.NodeUnpublishVolume({ volume_id: volumeId, target_path: targetPath }, context);
  const unstage = (stagingPath = staging, volumeId = VOLUME) => node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: stagingPath }, context);

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-node-'));
    staging = path.join(dir, 'staging');
    target = path.join(dir, 'pods', 'p1', 'mount');
    fs.mkdirSync(staging);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    mounter = new FakeMounter();
    processes = new FakeMountProcesses(mounter);
    node = createNodeService({ kubeletDir: dir, nodeId: 'node-a', mounter, mountProcesses: processes });
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('NodeStageVolume', () => {
    it.each([
      ['no volume_id', { volume_id: '' }, 'volume_id is required'],
      ['a malformed volume_id', { volume_id: 'Bad_Bucket/x' }, 'is not of the form bucket/prefix'],
      ['no staging_target_path', { staging_target_path: '' }, 'staging_target_path is required'],
      ['a relative staging_target_path', { staging_target_path: 'rel/path' }, 'staging_target_path must be an absolute path, got "rel/path"'],
      ['no volume_capability', { volume_capability: null }, 'volume_capability is required'],
      ['block access', { volume_capability: capability('SINGLE_NODE_WRITER', 'block') }, 'block access is not supported'],
      ['an unknown access mode', { volume_capability: capability('UNKNOWN') }, 'access_mode.mode "UNKNOWN" is not supported'],
      ['half the credentials', { secrets: { accessKeyID: 'AKID' } }, 'secrets must hold both accessKeyID and secretAccessKey'],
      ['an unknown mount option', { volume_context: { mountOptions: 'uid=1,allow-other' } }, 'volume_context mountOptions has the unknown option "allow-other"'],
      ['a bad mount option value', { volume_context: { mountOptions: 'file-mode=rw' } }, 'option "file-mode=rw" is invalid'],
      ['a setuid file mode', { volume_context: { mountOptions: 'uid=0,file-mode=4755' } }, 'volume_context mountOptions option "file-mode=4755" is invalid: file-mode 4755 sets the setuid bit; granary never mounts setuid, setgid or sticky files: use 0755'],
      ['a setgid directory mode', { volume_context: { mountOptions: 'dir-mode=2775' } }, 'dir-mode 2775 sets the setgid bit'],
      ['a cache switch that is not true or false', { volume_context: { cache: 'on' } }, 'volume_context cache must be true or false, not "on"'],
    ])('refuses %s with INVALID_ARGUMENT', async (_, overrides, message) => {
      const error = await codeOf(stage(overrides as Partial<NodeStageVolumeRequest__Output>));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(message);
      expect(processes.starts).toHaveLength(0);
    });

    it('starts one mount process with the volume location and settings', async () => {
      await stage();
      expect(processes.starts).toHaveLength(1);
      expect(processes.starts[0]).toMatchObject({
        volumeId: VOLUME,
        location: { bucket: 'bucket-one', prefix: 'team/data/' },
        stagingTargetPath: staging,
        readOnly: false,
        settings: { endpoint: 'http://127.0.0.1:9000', credentials: { accessKeyId: 'AKID', secretAccessKey: 'SECRET' } },
        flags: [],
      });
      expect(await mounter.isMountPoint(staging)).toBe('mounted');
    });

    describe('mount flags', () => {
      const nodeCache = ['--cache-peers', 'http://10.0.0.5:7070', '--cache-token-file', '/var/run/granary/token', '--cache-block-size', '4194304'];
      beforeEach(() => {
        node = createNodeService({ kubeletDir: dir, nodeId: 'node-a', mounter, mountProcesses: processes, cacheFlags: nodeCache });
      });

      it('passes the node cache flags and the mount options of the volume to its mount process', async () => {
        await stage({ volume_context: { bucket: 'bucket-one', prefix: 'team/data/', cache: 'true', mountOptions: 'uid=1000,file-mode=0640' } });
        expect(processes.starts[0]?.flags).toEqual([...nodeCache, '--uid', '1000', '--file-mode', '0640']);
      });

      it('leaves the cache flags out for a volume whose StorageClass turns the cache off', async () => {
        await stage({ volume_context: { cache: 'false', mountOptions: 'gid=2000' } });
        expect(processes.starts[0]?.flags).toEqual(['--gid', '2000']);
      });

      it('logs the flags at info, and never the secrets', async () => {
        const lines: string[] = [];
        const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
        await node.NodeStageVolume(stageRequest({ volume_context: { mountOptions: 'uid=1000' } }), { log });
        const entries = lines.map((line) => JSON.parse(line) as { level: number; msg: string; flags?: string[] });
        expect(entries.find((entry) => entry.flags !== undefined)).toMatchObject({ level: 30, flags: [...nodeCache, '--uid', '1000'] });
        expect(lines.join('')).not.toContain('SECRET');
      });

      it('uses the cache for a static volume without volume_context', async () => {
        await stage({ volume_context: {} });
        expect(processes.starts[0]?.flags).toEqual(nodeCache);
      });
    });

    it.each(['SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY'])('mounts read-only for %s', async (mode) => {
      await stage({ volume_capability: capability(mode) });
      expect(processes.starts[0]?.readOnly).toBe(true);
    });

    it.each(['SINGLE_NODE_WRITER', 'MULTI_NODE_MULTI_WRITER', 'MULTI_NODE_SINGLE_WRITER'])('mounts read-write for %s', async (mode) => {
      await stage({ volume_capability: capability(mode) });
      expect(processes.starts[0]?.readOnly).toBe(false);
    });

    it('is idempotent: a second identical call starts nothing', async () => {
      await stage();
      await stage();
      expect(processes.starts).toHaveLength(1);
    });

    it('answers ALREADY_EXISTS when staged with another read-only-ness', async () => {
      await stage();
      const error = await codeOf(stage({ volume_capability: capability('MULTI_NODE_READER_ONLY') }));
      expect(error.code).toBe('ALREADY_EXISTS');
      expect(error.message).toContain('already staged');
    });

    it('answers ALREADY_EXISTS when another filesystem is mounted at the staging path', async () => {
      mounter.add({ source: 'tmpfs', target: staging, fsType: 'tmpfs' });
      const error = await codeOf(stage());
      expect(error.code).toBe('ALREADY_EXISTS');
      expect(error.message).toContain('already holds another mount (tmpfs tmpfs)');
    });

    it('answers ALREADY_EXISTS when another volume is mounted at the staging path', async () => {
      mounter.add({ source: 's3://bucket-two/', target: staging, fsType: 'fuse.granary' });
      expect((await codeOf(stage())).code).toBe('ALREADY_EXISTS');
    });

    it('unmounts a dead mount (FUSE process gone) and stages again', async () => {
      await stage();
      mounter.markCorrupt(staging);
      await stage();
      expect(processes.starts).toHaveLength(2);
      expect(processes.stops).toEqual([VOLUME]);
      expect(mounter.calls).toContainEqual({ method: 'unmount', target: staging });
      expect(await mounter.isMountPoint(staging)).toBe('mounted');
    });

    it('refuses to stage a volume at a second path while it is staged at a first', async () => {
      await stage();
      const other = path.join(dir, 'staging-2');
      const error = await codeOf(stage({ staging_target_path: other }));
      expect(error.code).toBe('FAILED_PRECONDITION');
      expect(error.message).toContain(`already staged at ${staging}`);
    });

    it('creates a missing staging directory', async () => {
      fs.rmdirSync(staging);
      await stage();
      expect(fs.statSync(staging).isDirectory()).toBe(true);
    });

    it('passes a mount failure through', async () => {
      processes.failNext(new CsiError('INTERNAL', 'granary mount exited; see the mount log at /x.log'));
      const error = await codeOf(stage());
      expect(error).toEqual({ code: 'INTERNAL', message: 'granary mount exited; see the mount log at /x.log' });
    });

    it('answers ABORTED to a concurrent call for the same volume', async () => {
      const release = processes.hold();
      const first = stage();
      const second = await codeOf(stage());
      expect(second.code).toBe('ABORTED');
      const unstaging = await codeOf(unstage());
      expect(unstaging.code).toBe('ABORTED');
      release();
      await first;
    });

    it('answers ABORTED when two volumes race for one staging path', async () => {
      const release = processes.hold();
      const first = stage();
      const second = await codeOf(stage({ volume_id: 'bucket-two/other' }));
      expect(second.code).toBe('ABORTED');
      expect(second.message).toContain(`path:${staging}`);
      release();
      await first;
    });
  });

  describe('NodePublishVolume', () => {
    it.each([
      ['no volume_id', { volume_id: '' }, 'volume_id is required'],
      ['no target_path', { target_path: '' }, 'target_path is required'],
      ['a relative target_path', { target_path: 'pods/x' }, 'target_path must be an absolute path'],
      ['no volume_capability', { volume_capability: null }, 'volume_capability is required'],
      ['block access', { volume_capability: capability('SINGLE_NODE_WRITER', 'block') }, 'block access is not supported'],
      ['a relative staging_target_path', { staging_target_path: 'staging' }, 'staging_target_path must be an absolute path'],
    ])('refuses %s with INVALID_ARGUMENT', async (_, overrides, message) => {
      const error = await codeOf(publish(overrides as Partial<NodePublishVolumeRequest__Output>));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(message);
    });

    it('answers FAILED_PRECONDITION without a staging_target_path (spec: "Staging target path not set")', async () => {
      const error = await codeOf(publish({ staging_target_path: '' }));
      expect(error.code).toBe('FAILED_PRECONDITION');
      expect(error.message).toContain('staging_target_path is required');
    });

    it('answers FAILED_PRECONDITION when the volume is not staged', async () => {
      const error = await codeOf(publish());
      expect(error.code).toBe('FAILED_PRECONDITION');
      expect(error.message).toContain('is not staged');
    });

    it('answers FAILED_PRECONDITION when the staged mount is dead', async () => {
      await stage();
      mounter.markCorrupt(staging);
      const error = await codeOf(publish());
      expect(error.code).toBe('FAILED_PRECONDITION');
      expect(error.message).toContain('is dead');
    });

    it('answers FAILED_PRECONDITION when the staging path holds another volume', async () => {
      mounter.add({ source: 's3://bucket-two/', target: staging, fsType: 'fuse.granary' });
      expect((await codeOf(publish())).code).toBe('FAILED_PRECONDITION');
    });

    it('creates the target directory and binds the staged mount read-write', async () => {
      await stage();
      await publish();
      expect(fs.statSync(target).isDirectory()).toBe(true);
      expect(mounter.calls.filter((c) => c.method === 'bindMount')).toEqual([{ method: 'bindMount', source: staging, target, readOnly: false }]);
    });

    it.each([
      ['readonly is true', { readonly: true }, 'SINGLE_NODE_WRITER', true],
      ['the access mode is reader-only', { readonly: false }, 'MULTI_NODE_READER_ONLY', true],
      ['neither', { readonly: false }, 'MULTI_NODE_MULTI_WRITER', false],
    ])('binds read-only exactly when %s', async (_, overrides, mode, readOnly) => {
      await stage({ volume_capability: capability(mode) });
      await publish({ ...overrides, volume_capability: capability(mode) });
      expect(mounter.calls.find((c) => c.method === 'bindMount')?.readOnly).toBe(readOnly);
    });

    it('is idempotent: the same publish again binds nothing more', async () => {
      await stage();
      await publish({ readonly: true });
      await publish({ readonly: true });
      expect(mounter.calls.filter((c) => c.method === 'bindMount')).toHaveLength(1);
    });

    it('answers ALREADY_EXISTS when published at the target with another readonly flag', async () => {
      await stage();
      await publish({ readonly: true });
      const error = await codeOf(publish({ readonly: false }));
      expect(error.code).toBe('ALREADY_EXISTS');
      expect(error.message).toContain('already published');
    });

    it('answers ALREADY_EXISTS when something else is mounted at the target', async () => {
      await stage();
      mounter.add({ source: 'tmpfs', target, fsType: 'tmpfs' });
      expect((await codeOf(publish())).code).toBe('ALREADY_EXISTS');
    });

    it('refuses to publish read-write a volume staged read-only', async () => {
      await stage({ volume_capability: capability('MULTI_NODE_READER_ONLY') });
      const error = await codeOf(publish({ volume_capability: capability('MULTI_NODE_MULTI_WRITER') }));
      expect(error.code).toBe('FAILED_PRECONDITION');
    });

    it('replaces a dead bind left at the target', async () => {
      await stage();
      mounter.add({ source: 's3://bucket-one/team/data/', target, fsType: 'fuse.granary', device: '9:9' });
      mounter.markCorrupt(target);
      await publish();
      expect(await mounter.isMountPoint(target)).toBe('mounted');
      expect(mounter.calls.map((c) => c.method)).toEqual(['unmount', 'bindMount']);
    });

    it('removes the target directory it created when the bind fails', async () => {
      await stage();
      mounter.failNext('bindMount', new Error('mount: permission denied'));
      await expect(publish()).rejects.toThrow(/permission denied/);
      expect(fs.existsSync(target)).toBe(false);
    });

    it('answers ABORTED to a publish while the volume is being staged', async () => {
      await stage();
      const release = processes.hold();
      const staging2 = path.join(dir, 'staging-2');
      const racing = node.NodeStageVolume(stageRequest({ volume_id: 'bucket-two/other', staging_target_path: staging2 }), context);
      // bucket-two/other's stage holds its volume key; its publish must be ABORTED on that key.
      expect((await codeOf(publish({ volume_id: 'bucket-two/other', staging_target_path: staging2 }))).code).toBe('ABORTED');
      release();
      await racing;
    });
  });

  describe('NodeUnpublishVolume', () => {
    it.each([
      ['no volume_id', '', target, 'volume_id is required'],
      ['no target_path', VOLUME, '', 'target_path is required'],
      ['a relative target_path', VOLUME, 'x/y', 'target_path must be an absolute path'],
    ])('refuses %s with INVALID_ARGUMENT', async (_, volumeId, targetPath, message) => {
      const error = await codeOf(unpublish(targetPath, volumeId));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(message);
    });

    it('unmounts the target and removes its directory', async () => {
      await stage();
      await publish();
      await unpublish();
      expect(await mounter.isMountPoint(target)).toBe('not-mounted');
      expect(fs.existsSync(target)).toBe(false);
    });

    it('unmounts a dead target (ENOTCONN) too', async () => {
      await stage();
      await publish();
      mounter.markCorrupt(staging);
      expect(await mounter.isMountPoint(target)).toBe('corrupt');
      await unpublish();
      expect(await mounter.isMountPoint(target)).toBe('not-mounted');
      expect(fs.existsSync(target)).toBe(false);
    });

    it('answers OK for a target that is not mounted or does not exist', async () => {
      fs.mkdirSync(target);
      await unpublish();
      expect(fs.existsSync(target)).toBe(false);
      await unpublish();
      expect(mounter.calls).toEqual([]);
    });

    it('refuses to delete a target that still has content', async () => {
      fs.mkdirSync(target);
      fs.writeFileSync(path.join(target, 'data'), 'x');
      const error = await codeOf(unpublish());
      expect(error.code).toBe('INTERNAL');
      expect(fs.existsSync(path.join(target, 'data'))).toBe(true);
    });
  });

  describe('NodeUnstageVolume', () => {
    it.each([
      ['no volume_id', '', staging, 'volume_id is required'],
      ['no staging_target_path', VOLUME, '', 'staging_target_path is required'],
      ['a relative staging_target_path', VOLUME, 'x', 'staging_target_path must be an absolute path'],
    ])('refuses %s with INVALID_ARGUMENT', async (_, volumeId, stagingPath, message) => {
      const error = await codeOf(unstage(stagingPath || '', volumeId));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(message);
    });

    it('stops the mount process and unmounts the staging path', async () => {
      await stage();
      await unstage();
      expect(processes.stops).toEqual([VOLUME]);
      expect(processes.describe(VOLUME)).toBeUndefined();
      expect(await mounter.isMountPoint(staging)).toBe('not-mounted');
      // The CO owns the staging directory.
      expect(fs.existsSync(staging)).toBe(true);
    });

    it('answers OK when not staged', async () => {
      await unstage();
      await unstage(path.join(dir, 'never-existed'));
      expect(mounter.calls).toEqual([]);
    });

    it('unmounts a dead staging mount with no process in memory (after a plugin restart)', async () => {
      mounter.add({ source: 's3://bucket-one/team/data/', target: staging, fsType: 'fuse.granary' });
      mounter.markCorrupt(staging);
      await unstage();
      expect(processes.stops).toEqual([]);
      expect(await mounter.isMountPoint(staging)).toBe('not-mounted');
    });

    it('leaves a process serving another path alone', async () => {
      await stage();
      await unstage(path.join(dir, 'elsewhere'));
      expect(processes.describe(VOLUME)).toBeDefined();
    });
  });

  describe('where it mounts: below the kubelet directory, never through a link, a whole bucket only when allowed', () => {
    let outside: string;

    beforeEach(() => {
      // A host directory outside the kubelet directory, holding something that must never be touched.
      outside = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-outside-'));
      fs.writeFileSync(path.join(outside, 'precious'), 'host data');
    });

    afterEach(() => fs.rmSync(outside, { recursive: true, force: true }));

    /** The host directory is as the test left it, and nothing was mounted, unmounted or bound anywhere. */
    function outsideUntouched(): void {
      expect(fs.readdirSync(outside)).toEqual(['precious']);
      expect(fs.readFileSync(path.join(outside, 'precious'), 'utf8')).toBe('host data');
    }

    it.each([
      ['/etc', '/etc'],
      ['the kubelet directory itself', ''],
      ['a path that climbs out with ..', '../../etc/granary'],
    ])('refuses to stage at %s with INVALID_ARGUMENT naming the path and the kubelet directory', async (_, relative) => {
      const requested = relative.startsWith('/') ? relative : `${dir}/${relative}`;
      const error = await codeOf(stage({ staging_target_path: requested }));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(`staging_target_path ${path.resolve(requested)} is not below the kubelet directory ${dir}`);
      expect(error.message).toContain('--kubelet-dir');
      expect(processes.starts).toHaveLength(0);
    });

    it('refuses to publish to a target, or from a staging path, outside the kubelet directory', async () => {
      await stage();
      const toOutside = await codeOf(publish({ target_path: path.join(outside, 'mount') }));
      expect(toOutside.code).toBe('INVALID_ARGUMENT');
      expect(toOutside.message).toContain(`target_path ${path.join(outside, 'mount')} is not below the kubelet directory ${dir}`);
      const fromOutside = await codeOf(publish({ staging_target_path: outside }));
      expect(fromOutside).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`staging_target_path ${outside} is not below`) });
      expect(mounter.calls.filter((c) => c.method === 'bindMount')).toEqual([]);
      outsideUntouched();
    });

    it('refuses to unpublish or unstage outside the kubelet directory, touching nothing', async () => {
      expect(await codeOf(unpublish(outside))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`target_path ${outside} is not below the kubelet directory`) });
      expect(await codeOf(unstage(outside))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`staging_target_path ${outside} is not below the kubelet directory`) });
      expect(mounter.calls).toEqual([]);
      outsideUntouched();
    });

    it('refuses a staging path that is a symbolic link, or a dangling one', async () => {
      fs.rmdirSync(staging);
      fs.symlinkSync(outside, staging);
      const error = await codeOf(stage());
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toBe(
        `staging_target_path ${staging} is a symbolic link (to ${outside}): granary mounts only on real directories below the kubelet directory ${dir}, never through a link; remove the link`,
      );
      fs.unlinkSync(staging);
      fs.symlinkSync(path.join(outside, 'missing'), staging);
      expect((await codeOf(stage())).code).toBe('INVALID_ARGUMENT');
      expect(processes.starts).toHaveLength(0);
      outsideUntouched();
    });

    it('refuses a staging path under a symbolic link, and creates nothing where it points', async () => {
      const plugins = path.join(dir, 'plugins');
      fs.symlinkSync(outside, plugins);
      const error = await codeOf(stage({ staging_target_path: path.join(plugins, 'csi', 'globalmount') }));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(`goes through the symbolic link ${plugins} (to ${outside})`);
      expect(processes.starts).toHaveLength(0);
      outsideUntouched();
    });

    it('refuses to publish to a target that is a link or lies under one, and to publish from a linked staging path', async () => {
      await stage();
      fs.symlinkSync(outside, target);
      expect(await codeOf(publish())).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`target_path ${target} is a symbolic link (to ${outside})`) });
      fs.unlinkSync(target);
      const pod = path.join(dir, 'pods', 'p2');
      fs.symlinkSync(outside, pod);
      expect(await codeOf(publish({ target_path: path.join(pod, 'volumes', 'mount') }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`goes through the symbolic link ${pod}`) });
      const linkedStaging = path.join(dir, 'staging-link');
      fs.symlinkSync(staging, linkedStaging);
      expect(await codeOf(publish({ staging_target_path: linkedStaging }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`staging_target_path ${linkedStaging} is a symbolic link`) });
      expect(mounter.calls.filter((c) => c.method === 'bindMount')).toEqual([]);
      outsideUntouched();
    });

    it('unpublishes a target swapped for a symbolic link after publish: removes the link, follows nothing, and a retry answers OK', async () => {
      await stage();
      await publish();
      // The mount point replaced from another mount namespace (where it is no mount point): the kernel detaches the bind.
      mounter.mounts.splice(mounter.mounts.findIndex((m) => m.mountPoint === target), 1);
      fs.rmdirSync(target);
      fs.symlinkSync(outside, target);
      // Something is mounted where the link points: unmounting through the link would take it down.
      mounter.add({ source: 'host', target: outside, fsType: 'ext4' });
      const before = mounter.calls.length;
      await unpublish();
      await unpublish();
      expect(() => fs.lstatSync(target)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(mounter.calls.slice(before)).toEqual([]);
      expect(await mounter.isMountPoint(outside)).toBe('mounted');
      outsideUntouched();
    });

    it('unpublishes a target that was a link all along (dangling too) by removing the link, not what it points at', async () => {
      fs.symlinkSync(outside, target);
      await unpublish();
      expect(fs.existsSync(target)).toBe(false);
      fs.symlinkSync(path.join(outside, 'gone'), target);
      await unpublish();
      expect(() => fs.lstatSync(target)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(mounter.calls).toEqual([]);
      outsideUntouched();
    });

    it('answers OK to an unpublish under a linked directory, leaving the link and its target alone', async () => {
      const pod = path.join(dir, 'pods', 'p2');
      fs.symlinkSync(outside, pod);
      fs.mkdirSync(path.join(outside, 'mount'));
      mounter.add({ source: 'host', target: path.join(outside, 'mount'), fsType: 'ext4' });
      await unpublish(path.join(pod, 'mount'));
      expect(fs.readlinkSync(pod)).toBe(outside);
      expect(fs.existsSync(path.join(outside, 'mount'))).toBe(true);
      expect(mounter.calls).toEqual([]);
    });

    it('unstages a staging path swapped for a link: removes the link first, then stops the mount process, unmounting nothing', async () => {
      await stage();
      mounter.mounts.splice(0, mounter.mounts.length);
      fs.rmdirSync(staging);
      fs.symlinkSync(outside, staging);
      mounter.add({ source: 'host', target: outside, fsType: 'ext4' });
      await unstage();
      expect(processes.stops).toEqual([VOLUME]);
      expect(() => fs.lstatSync(staging)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(mounter.calls).toEqual([]);
      expect(await mounter.isMountPoint(outside)).toBe('mounted');
      await unstage();
      outsideUntouched();
    });

    it('refuses to unstage through a linked directory while the volume is staged there, and stops nothing', async () => {
      const plugins = path.join(dir, 'plugins');
      fs.mkdirSync(plugins);
      const globalmount = path.join(plugins, 'globalmount');
      fs.mkdirSync(globalmount);
      await stage({ staging_target_path: globalmount });
      fs.renameSync(plugins, path.join(dir, 'plugins-moved'));
      fs.symlinkSync(outside, plugins);
      const error = await codeOf(unstage(globalmount));
      expect(error.code).toBe('FAILED_PRECONDITION');
      expect(error.message).toContain(`goes through the symbolic link ${plugins} (to ${outside})`);
      expect(processes.stops).toEqual([]);
      // With no mount process there (after a plugin restart, say), nothing is left to undo: OK.
      await unstage(globalmount, 'bucket-two/other');
      outsideUntouched();
    });

    it.each(['bucket-one', 'bucket-one/', 'bucket-one//'])('refuses the whole-bucket volume ID %j at stage and publish, saying how to allow it', async (volumeId) => {
      const error = await codeOf(stage({ volume_id: volumeId }));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toBe(
        `volume_id ${JSON.stringify(volumeId)} has an empty prefix: it would mount all of bucket bucket-one, which granary does only when the volume allows it; ` +
          'to mount the whole bucket set volumeAttributes allowWholeBucket: "true" on the PersistentVolume (volumeHandle bucket-one), else name a prefix (bucket-one/PREFIX)',
      );
      expect((await codeOf(publish({ volume_id: volumeId }))).code).toBe('INVALID_ARGUMENT');
      expect((await codeOf(stage({ volume_id: volumeId, volume_context: { allowWholeBucket: 'false' } }))).code).toBe('INVALID_ARGUMENT');
      expect(processes.starts).toHaveLength(0);
    });

    it('stages and publishes a whole bucket when the volume allows it', async () => {
      await stage({ volume_id: 'bucket-one', volume_context: { allowWholeBucket: 'true' } });
      expect(processes.starts[0]?.location).toEqual({ bucket: 'bucket-one', prefix: '' });
      await publish({ volume_id: 'bucket-one', volume_context: { allowWholeBucket: 'true' } });
      expect(await mounter.isMountPoint(target)).toBe('mounted');
    });

    it('refuses an allowWholeBucket that is not true or false, even with a prefix', async () => {
      expect(await codeOf(stage({ volume_context: { allowWholeBucket: 'yes' } }))).toEqual({ code: 'INVALID_ARGUMENT', message: 'volume_context allowWholeBucket must be true or false (default false), not "yes"' });
    });

    it('binds every published volume nosuid,nodev', async () => {
      await stage();
      await publish({ readonly: true });
      expect(findMount(mounter.mounts, target)?.mountOptions).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
    });
  });

  describe('NodeGetInfo and NodeGetCapabilities', () => {
    it('reports the node ID and no volume limit by default', async () => {
      expect(await node.NodeGetInfo({}, context)).toEqual({ node_id: 'node-a', max_volumes_per_node: 0 });
    });

    it('reports a configured volume limit', async () => {
      const limited = createNodeService({ kubeletDir: dir, nodeId: 'node-b', mounter, mountProcesses: processes, maxVolumesPerNode: 12, inflight: new InFlight() });
      expect(await limited.NodeGetInfo({}, context)).toEqual({ node_id: 'node-b', max_volumes_per_node: 12 });
    });

    it('refuses a bad node ID or volume limit at construction', () => {
      expect(() => createNodeService({ kubeletDir: dir, nodeId: '', mounter, mountProcesses: processes })).toThrow(/node ID/);
      expect(() => createNodeService({ kubeletDir: dir, nodeId: 'x'.repeat(257), mounter, mountProcesses: processes })).toThrow(/node ID/);
      expect(() => createNodeService({ kubeletDir: dir, nodeId: 'n', mounter, mountProcesses: processes, maxVolumesPerNode: -1 })).toThrow(/maxVolumesPerNode/);
    });
  });
  describe('NodeGetVolumeStats', () => {
    const stats = { bsize: 4096, blocks: 1000, bfree: 400, bavail: 300, files: 50, ffree: 20 };
    const volumeStats = (volumePath: string, volumeId = VOLUME) => node.NodeGetVolumeStats({ volume_id: volumeId, volume_path: volumePath, staging_target_path: '' }, context);

    beforeEach(() => {
      node = createNodeService({ kubeletDir: dir, nodeId: 'node-a', mounter, mountProcesses: processes, statfs: async () => stats });
    });

    it('reports bytes and inodes of a published volume from statfs, with a normal condition', async () => {
      await stage();
      await publish();
      await expect(volumeStats(target)).resolves.toEqual({
        usage: [
          { unit: 'BYTES', total: 4096 * 1000, available: 4096 * 300, used: 4096 * 600 },
          { unit: 'INODES', total: 50, available: 20, used: 30 },
        ],
        volume_condition: { abnormal: false, message: 'mounted' },
      });
    });

    it('answers NOT_FOUND for a path where the volume is not mounted, and for another volume', async () => {
      await stage();
      await expect(codeOf(volumeStats(path.join(dir, 'elsewhere')))).resolves.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('is not mounted at') });
      await expect(codeOf(volumeStats(staging, 'bucket-two/other')).then((r) => r.code)).resolves.toBe('NOT_FOUND');
    });

    it('answers INVALID_ARGUMENT without a volume id or a volume path', async () => {
      await expect(codeOf(volumeStats(target, ''))).resolves.toMatchObject({ code: 'INVALID_ARGUMENT', message: 'volume_id is required' });
      await expect(codeOf(volumeStats(''))).resolves.toMatchObject({ code: 'INVALID_ARGUMENT', message: 'volume_path is required' });
    });

    it('reports an abnormal condition when the mount process is gone', async () => {
      await stage();
      mounter.markCorrupt(staging);
      const response = await volumeStats(staging);
      expect(response.usage).toEqual([]);
      expect(response.volume_condition).toMatchObject({ abnormal: true, message: expect.stringContaining('ENOTCONN') });
    });

    it('advertises GET_VOLUME_STATS and VOLUME_CONDITION', async () => {
      const types = (await node.NodeGetCapabilities({}, context)).capabilities?.map((c) => c.rpc?.type);
      expect(types).toEqual(['STAGE_UNSTAGE_VOLUME', 'GET_VOLUME_STATS', 'VOLUME_CONDITION']);
    });
  });
});
