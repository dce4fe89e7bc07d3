import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../../log/logger';
import type { MountEntry } from '../../system/mountinfo';
import { raiseKernelReadahead } from './kernel-readahead';

const mount = (mountPoint: string, device: string): MountEntry => ({
  mountId: 1, device, root: '/', mountPoint, mountOptions: ['rw'], fsType: 'fuse.granary', source: 's3://b/p', superOptions: [],
});

describe('raiseKernelReadahead', () => {
  let sysfs: string;
  beforeEach(() => {
    sysfs = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-bdi-'));
    fs.mkdirSync(path.join(sysfs, '0:45'));
    fs.writeFileSync(path.join(sysfs, '0:45', 'read_ahead_kb'), '128\n');
  });
  afterEach(() => fs.rmSync(sysfs, { recursive: true, force: true }));

  it("writes read_ahead_kb of the mount's device", () => {
    const now = raiseKernelReadahead('/mnt/v', 16 * 1024 * 1024, silentLogger(), { sysfsRoot: sysfs, mounts: () => [mount('/mnt/v', '0:45')] });
    expect(now).toBe(16 * 1024 * 1024);
    expect(fs.readFileSync(path.join(sysfs, '0:45', 'read_ahead_kb'), 'utf8').trim()).toBe('16384');
  });

  it('reports undefined, without throwing, when the mount or its bdi is missing', () => {
    expect(raiseKernelReadahead('/mnt/other', 1 << 20, silentLogger(), { sysfsRoot: sysfs, mounts: () => [mount('/mnt/v', '0:45')] })).toBeUndefined();
    expect(raiseKernelReadahead('/mnt/v', 1 << 20, silentLogger(), { sysfsRoot: sysfs, mounts: () => [mount('/mnt/v', '0:99')] })).toBeUndefined();
  });
});
