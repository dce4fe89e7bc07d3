import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LinuxMounter } from './linux';
import { findMount, isReadOnlyMount } from './mounter';

// Real mounts (root only): tmpfs as the "staged" filesystem, bind mounts as "published" ones.
describe('LinuxMounter against the kernel', () => {
  const mounter = new LinuxMounter();
  let dir: string;
  let source: string;

  const mountsUnder = async () => (await mounter.listMounts()).filter((m) => m.mountPoint.startsWith(dir));

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('these tests make real mounts and must run as root');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary linux mounter '));
    source = path.join(dir, 'source dir');
    fs.mkdirSync(source);
    await mounter.mount('granary-test', source, 'tmpfs', ['size=1m']);
    fs.writeFileSync(path.join(source, 'file.txt'), 'hello');
  });

  afterAll(async () => {
    // Even after a failed test, nothing stays mounted: innermost first, lazily.
    for (const entry of (await mountsUnder()).reverse()) await mounter.unmount(entry.mountPoint).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sees a mount whose path needs octal escapes in mountinfo', async () => {
    expect(await mounter.isMountPoint(source)).toBe('mounted');
    expect(findMount(await mounter.listMounts(), source)).toMatchObject({ fsType: 'tmpfs', source: 'granary-test' });
    expect(await mounter.isMountPoint(dir)).toBe('not-mounted');
    expect(await mounter.isMountPoint(path.join(dir, 'missing'))).toBe('not-mounted');
  });

  it('makes a read-only bind that refuses writes (EROFS) while the source stays writable', async () => {
    const target = path.join(dir, 'ro');
    fs.mkdirSync(target);
    await mounter.bindMount(source, target, true);
    expect(fs.readFileSync(path.join(target, 'file.txt'), 'utf8')).toBe('hello');
    expect(() => fs.writeFileSync(path.join(target, 'new.txt'), 'x')).toThrow(expect.objectContaining({ code: 'EROFS' }));
    fs.writeFileSync(path.join(source, 'via-source.txt'), 'x');
    const entry = findMount(await mounter.listMounts(), target);
    expect(entry && isReadOnlyMount(entry)).toBe(true);
    await mounter.unmount(target);
    expect(await mounter.isMountPoint(target)).toBe('not-mounted');
  });

  it('makes a read-write bind', async () => {
    const target = path.join(dir, 'rw');
    fs.mkdirSync(target);
    await mounter.bindMount(source, target, false);
    fs.writeFileSync(path.join(target, 'written.txt'), 'x');
    expect(fs.existsSync(path.join(source, 'written.txt'))).toBe(true);
    await mounter.unmount(target);
  });

  it.each([false, true])('makes every bind nosuid,nodev even when its source is neither (read-only %s)', async (readOnly) => {
    const target = path.join(dir, `flags-${readOnly}`);
    fs.mkdirSync(target);
    expect(findMount(await mounter.listMounts(), source)?.mountOptions).not.toEqual(expect.arrayContaining(['nosuid']));
    await mounter.bindMount(source, target, readOnly);
    const entry = findMount(await mounter.listMounts(), target);
    expect(entry?.mountOptions).toEqual(expect.arrayContaining(['nosuid', 'nodev', readOnly ? 'ro' : 'rw']));
    await mounter.unmount(target);
  });

  it('detaches a busy mount lazily', async () => {
    const target = path.join(dir, 'busy');
    fs.mkdirSync(target);
    await mounter.bindMount(source, target, false);
    const open = fs.openSync(path.join(target, 'file.txt'), 'r');
    // An open file makes a plain umount fail with EBUSY only for some mounts; either way the path must be free afterwards.
    try {
      await mounter.unmount(target);
      expect(await mounter.isMountPoint(target)).toBe('not-mounted');
    } finally {
      fs.closeSync(open);
    }
  });

  it('unmounts mounts stacked on one path', async () => {
    const target = path.join(dir, 'stacked');
    fs.mkdirSync(target);
    await mounter.bindMount(source, target, false);
    await mounter.bindMount(source, target, true);
    await mounter.unmount(target);
    expect(await mounter.isMountPoint(target)).toBe('not-mounted');
  });
});
