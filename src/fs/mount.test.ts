import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { MountEntry } from '../system/mountinfo';
import { checkMountpoint, MountpointError } from './mount';

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
