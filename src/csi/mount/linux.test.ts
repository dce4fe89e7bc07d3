import { parseMountInfo, unescapeMountInfoField } from '../../system/mountinfo';
import { LinuxMounter, MountCommandError, type LinuxMounterEffects } from './linux';
import { findMount, isReadOnlyMount } from './mounter';

const MOUNTINFO = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard',
  '50 27 0:45 / /var/lib/kubelet/plugins/csi.granary.dev/staging\\040dir/vol rw,nosuid,nodev,relatime shared:7 master:2 - fuse.granary s3://bucket-one/team/ rw,user_id=0,group_id=0',
  '51 27 0:45 / /var/lib/kubelet/pods/p1/volumes/mount ro,nosuid,nodev,relatime shared:7 - fuse.granary s3://bucket-one/team/ rw,user_id=0,group_id=0',
  '52 27 0:46 /sub /tmp/tab\\011and\\012newline\\134back rw - tmpfs tmp\\040fs rw',
  'garbage line',
  '',
].join('\n');

const errno = (code: string) => Object.assign(new Error(code), { code });

/** A mounter over a scripted world: a mountinfo text, stat answers per path, and a log of commands. */
function scripted(options: { mountinfo?: string; statErrors?: Record<string, string>; failing?: Record<string, string> } = {}) {
  const commands: string[] = [];
  let mountinfo = options.mountinfo ?? MOUNTINFO;
  const effects: LinuxMounterEffects = {
    run: async (command, args) => {
      const line = [command, ...args].join(' ');
      commands.push(line);
      const stderr = options.failing?.[line];
      if (stderr !== undefined) throw new MountCommandError(command, args, stderr);
      // A successful umount removes the last entry for that path, as the kernel would.
      if (command === 'umount') {
        const target = args[args.length - 1] ?? '';
        const lines = mountinfo.split('\n');
        const index = lines.map((l) => unescapeMountInfoField(l.split(' ')[4] ?? '')).lastIndexOf(target);
        if (index >= 0) lines.splice(index, 1);
        mountinfo = lines.join('\n');
      }
      return { stdout: '', stderr: '' };
    },
    readMountInfo: async () => mountinfo,
    statfs: async (target) => {
      // A dead mount answers its error only while it is mounted, as in the kernel.
      const code = options.statErrors?.[target];
      if (code && (code === 'ENOENT' || mountinfo.split('\n').some((l) => unescapeMountInfoField(l.split(' ')[4] ?? '') === target))) throw errno(code);
      return {};
    },
  };
  return { mounter: new LinuxMounter(effects), commands, setMountinfo: (text: string) => (mountinfo = text) };
}

describe('parseMountInfo', () => {
  const entries = parseMountInfo(MOUNTINFO);

  it('reads every well-formed line and skips the rest', () => {
    expect(entries.map((e) => e.mountId)).toEqual([22, 27, 50, 51, 52]);
  });

  it('finds the fields after optional fields of any count', () => {
    expect(entries[2]).toEqual({
      mountId: 50,
      device: '0:45',
      root: '/',
      mountPoint: '/var/lib/kubelet/plugins/csi.granary.dev/staging dir/vol',
      mountOptions: ['rw', 'nosuid', 'nodev', 'relatime'],
      fsType: 'fuse.granary',
      source: 's3://bucket-one/team/',
      superOptions: ['rw', 'user_id=0', 'group_id=0'],
    });
  });

  it('decodes octal escapes in paths and sources', () => {
    expect(entries[4]).toMatchObject({ root: '/sub', mountPoint: '/tmp/tab\tand\nnewline\\back', source: 'tmp fs' });
    expect(unescapeMountInfoField('a\\040b\\134c')).toBe('a b\\c');
  });

  it('tells read-only binds by their per-mount options', () => {
    expect(isReadOnlyMount(entries[3]!)).toBe(true);
    expect(isReadOnlyMount(entries[2]!)).toBe(false);
    expect(findMount(entries, '/var/lib/kubelet/pods/p1/volumes/mount/')?.mountId).toBe(51);
  });
});

describe('LinuxMounter', () => {
  const staging = '/var/lib/kubelet/plugins/csi.granary.dev/staging dir/vol';
  const target = '/var/lib/kubelet/pods/p1/volumes/mount';

  it('calls a listed, answering path mounted', async () => {
    expect(await scripted().mounter.isMountPoint(staging)).toBe('mounted');
  });

  it('calls a path whose statfs answers ENOTCONN (dead FUSE) corrupt', async () => {
    expect(await scripted({ statErrors: { [staging]: 'ENOTCONN' } }).mounter.isMountPoint(staging)).toBe('corrupt');
    expect(await scripted({ statErrors: { [staging]: 'EIO' } }).mounter.isMountPoint(staging)).toBe('corrupt');
  });

  it('calls a listed path mounted when its filesystem answers statfs with another error', async () => {
    expect(await scripted({ statErrors: { [staging]: 'ENOSYS' } }).mounter.isMountPoint(staging)).toBe('mounted');
  });

  it('calls an unlisted or missing path not-mounted', async () => {
    expect(await scripted().mounter.isMountPoint('/var/lib/kubelet')).toBe('not-mounted');
    expect(await scripted({ statErrors: { '/nowhere': 'ENOENT' } }).mounter.isMountPoint('/nowhere')).toBe('not-mounted');
  });

  it('bind-mounts read-write with a bind then a nosuid,nodev remount, and checks mountinfo', async () => {
    const { mounter, commands } = scripted();
    await mounter.bindMount('/src', staging, false);
    expect(commands).toEqual([`mount --bind /src ${staging}`, `mount -o remount,bind,nosuid,nodev ${staging}`]);
  });

  it('bind-mounts read-only with a bind then a nosuid,nodev,ro remount, and checks mountinfo', async () => {
    const { mounter, commands } = scripted();
    await mounter.bindMount(staging, target, true);
    expect(commands).toEqual([`mount --bind ${staging} ${target}`, `mount -o remount,bind,nosuid,nodev,ro ${target}`]);
  });

  it('undoes the bind when the remount fails', async () => {
    const { mounter, commands } = scripted({ failing: { [`mount -o remount,bind,nosuid,nodev,ro ${staging}`]: 'permission denied' } });
    await expect(mounter.bindMount('/src', staging, true)).rejects.toThrow(/permission denied/);
    expect(commands).toEqual([`mount --bind /src ${staging}`, `mount -o remount,bind,nosuid,nodev,ro ${staging}`, `umount ${staging}`]);
  });

  it('undoes the bind when mountinfo does not show it read-only', async () => {
    const { mounter, commands } = scripted();
    await expect(mounter.bindMount('/src', staging, true)).rejects.toThrow(/lacks ro after remount,bind,nosuid,nodev,ro/);
    expect(commands).toContain(`umount ${staging}`);
  });

  it('undoes the bind when mountinfo does not show it nosuid,nodev', async () => {
    const { mounter, commands } = scripted({ mountinfo: `${MOUNTINFO}\n61 27 0:45 / /tmp/suid rw,relatime - fuse.granary s3://bucket-one/team/ rw` });
    await expect(mounter.bindMount(staging, '/tmp/suid', false)).rejects.toThrow('the bind mount at /tmp/suid lacks nosuid,nodev');
    expect(commands[commands.length - 1]).toBe('umount /tmp/suid');
  });

  it('leaves a path that is not a mount point alone', async () => {
    const { mounter, commands } = scripted();
    await mounter.unmount('/tmp/not-a-mount');
    expect(commands).toEqual([]);
  });

  it('falls back to a lazy unmount when the mount is busy', async () => {
    const { mounter, commands } = scripted({ failing: { [`umount ${target}`]: `umount: ${target}: target is busy.` } });
    await mounter.unmount(target);
    expect(commands).toEqual([`umount ${target}`, `umount -l ${target}`]);
  });

  it('falls back to a lazy unmount for a dead mount whatever umount says', async () => {
    const { mounter, commands } = scripted({ statErrors: { [target]: 'ENOTCONN' }, failing: { [`umount ${target}`]: 'odd failure' } });
    await mounter.unmount(target);
    expect(commands).toEqual([`umount ${target}`, `umount -l ${target}`]);
  });

  it('does not hide a plain umount failure', async () => {
    const { mounter } = scripted({ failing: { [`umount ${target}`]: 'umount: must be superuser' } });
    await expect(mounter.unmount(target)).rejects.toThrow(/must be superuser/);
  });

  it('peels off mounts stacked on one path', async () => {
    const stacked = `${MOUNTINFO}\n60 27 0:47 / ${target} rw - tmpfs t rw`;
    const { mounter, commands } = scripted({ mountinfo: stacked });
    await mounter.unmount(target);
    expect(commands).toEqual([`umount ${target}`, `umount ${target}`]);
    expect(await mounter.isMountPoint(target)).toBe('not-mounted');
  });

  it('mounts with type and options', async () => {
    const { mounter, commands } = scripted();
    await mounter.mount('src', '/tmp/x', 'tmpfs', ['size=1m', 'ro']);
    await mounter.mount('src', '/tmp/y', 'tmpfs', []);
    expect(commands).toEqual(['mount -t tmpfs -o size=1m,ro src /tmp/x', 'mount -t tmpfs src /tmp/y']);
  });
});
