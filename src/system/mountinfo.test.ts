import { findMount, isReadOnlyMount, parseMountInfo } from './mountinfo';

const SAMPLE = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '42 22 0:39 / /tmp/with\\040space rw,nosuid,nodev,relatime shared:2 - fuse.granary s3://bucket/prefix rw,user_id=0,group_id=0,default_permissions,allow_other',
  '43 22 0:40 / /mnt/m ro,relatime - fuse.granary /data rw',
  '44 22 0:41 / /mnt/m rw,relatime - tmpfs tmpfs rw',
  '',
].join('\n');

describe('mountinfo', () => {
  it('parses the fields granary uses, decoding octal escapes', () => {
    const entries = parseMountInfo(SAMPLE);
    expect(entries).toHaveLength(4);
    expect(entries[1]).toEqual({
      mountId: 42,
      device: '0:39',
      root: '/',
      mountPoint: '/tmp/with space',
      mountOptions: ['rw', 'nosuid', 'nodev', 'relatime'],
      fsType: 'fuse.granary',
      source: 's3://bucket/prefix',
      superOptions: ['rw', 'user_id=0', 'group_id=0', 'default_permissions', 'allow_other'],
    });
  });

  it('finds the topmost mount at a path', () => {
    const entries = parseMountInfo(SAMPLE);
    expect(findMount(entries, '/mnt/m')?.fsType).toBe('tmpfs');
    expect(findMount(entries, '/mnt/other')).toBeUndefined();
  });

  it('knows a read-only mount by its per-mount or superblock options', () => {
    const entries = parseMountInfo(SAMPLE);
    expect(entries.map(isReadOnlyMount)).toEqual([false, false, true, false]);
  });
});
