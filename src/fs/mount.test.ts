import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseMountConfig } from '../config/mount';
import { silentLogger } from '../log/logger';
import { MemoryStore } from '../objectstore/memory';
import { FakeKernel } from './fuse/fake-kernel';
import type { MountEntry } from '../system/mountinfo';
import { checkMountpoint, MountpointError, serveMount } from './mount';

describe('checkMountpoint', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-mountpoint-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('accepts an existing directory that is not a mount and returns its real path', () => {
    expect(checkMountpoint(dir, () => [])).toBe(fs.realpathSync(dir));
  });

  it('refuses a missing path, a file, and an existing mount, saying what to do', () => {
    expect(() => checkMountpoint(path.join(dir, 'nope'), () => [])).toThrow(/does not exist: create the directory/);
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    expect(() => checkMountpoint(path.join(dir, 'file'), () => [])).toThrow(/is not a directory/);
    const mounted: MountEntry = { mountId: 1, device: '0:99', root: '/', mountPoint: fs.realpathSync(dir), fsType: 'fuse.granary', source: 's3://b/p', mountOptions: ['rw'], superOptions: ['rw'] };
    expect(() => checkMountpoint(dir, () => [mounted])).toThrow(MountpointError);
    expect(() => checkMountpoint(dir, () => [mounted])).toThrow(/already a mount \(fuse.granary from s3:\/\/b\/p\): unmount it first/);
  });
});

describe('serveMount', () => {
  let dir: string;
  let kernel: FakeKernel;
  let store: MemoryStore;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-serve-'));
    kernel = new FakeKernel();
    store = new MemoryStore('bucket');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const config = (extra: Record<string, unknown> = {}) => parseMountConfig({ source: 's3://bucket/vol', mountpoint: dir, ...extra });
  const dependencies = (signals: EventEmitter) => ({
    logger: silentLogger(),
    fuseSystem: kernel,
    mounts: () => [],
    signals,
    openSource: () => ({ store, prefix: 'vol/' }),
  });

  it('mounts, writes ready to the ready fd, and unmounts on SIGTERM', async () => {
    const readyFile = path.join(dir, '..', `${path.basename(dir)}.ready`);
    const readyFd = fs.openSync(readyFile, 'w');
    const signals = new EventEmitter();
    const served = serveMount(config({ readyFd, readOnly: true }), dependencies(signals));
    while (!fs.readFileSync(readyFile, 'utf8')) await new Promise((r) => setTimeout(r, 5));
    expect(fs.readFileSync(readyFile, 'utf8')).toBe('ready\n');
    expect(kernel.mounts[0]).toMatchObject({ source: 's3://bucket/vol', type: 'fuse.granary', mountpoint: fs.realpathSync(dir) });
    expect(kernel.mounts[0]?.options).toContain('ro');
    signals.emit('SIGTERM');
    await served;
    expect(kernel.unmounts).toEqual([[fs.realpathSync(dir), false]]);
    expect(signals.listenerCount('SIGTERM')).toBe(0);
    fs.rmSync(readyFile);
  });

  it('returns when someone else unmounts', async () => {
    const signals = new EventEmitter();
    const served = serveMount(config(), dependencies(signals));
    while (kernel.mounts.length === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 10));
    kernel.disconnect();
    await served;
    expect(kernel.unmounts).toEqual([]);
  });

  it('aborts, at start, the multipart uploads its state directory records from a previous mount', async () => {
    const stateDir = path.join(dir, '..', `${path.basename(dir)}.state`);
    const orphan = await store.createMultipartUpload('vol/ckpt/step-9.pt');
    fs.mkdirSync(stateDir);
    const entry = { bucket: store.location, key: orphan.key, uploadId: orphan.uploadId, startedAt: new Date().toISOString() };
    fs.writeFileSync(path.join(stateDir, 'uploads.json'), JSON.stringify({ version: 1, uploads: [entry] }));
    expect(store.pendingUploads()).toEqual(['vol/ckpt/step-9.pt']);
    const signals = new EventEmitter();
    const served = serveMount(config({ stateDir }), dependencies(signals));
    while (store.pendingUploads().length > 0) await new Promise((r) => setTimeout(r, 5));
    signals.emit('SIGTERM');
    await served;
    expect(JSON.parse(fs.readFileSync(path.join(stateDir, 'uploads.json'), 'utf8'))).toEqual({ version: 1, uploads: [] });
    fs.rmSync(stateDir, { recursive: true });
  });

  it('fails before mounting when the bucket cannot be used', async () => {
    store.failNext('checkBucket', 'AccessDenied');
    await expect(serveMount(config(), dependencies(new EventEmitter()))).rejects.toThrow(/cannot use memory:\/\/bucket/);
    expect(kernel.mounts).toEqual([]);
  });
});
