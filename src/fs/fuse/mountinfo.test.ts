import { connectionIdOf } from './device';
import { findMount, parseMountInfo } from './mountinfo';

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
      mountpoint: '/tmp/with space',
      options: ['rw', 'nosuid', 'nodev', 'relatime'],
      type: 'fuse.granary',
      source: 's3://bucket/prefix',
    });
  });

  it('finds the topmost mount at a path', () => {
    const entries = parseMountInfo(SAMPLE);
    expect(findMount('/mnt/m', entries)?.type).toBe('tmpfs');
    expect(findMount('/mnt/other', entries)).toBeUndefined();
  });

  it('turns a mount device into the kernel connection id (MKDEV)', () => {
    expect(connectionIdOf('0:39')).toBe(39);
    expect(connectionIdOf('1:2')).toBe(2 ** 20 + 2);
    expect(connectionIdOf('junk')).toBeUndefined();
  });
});
