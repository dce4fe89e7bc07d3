import { readMemoryLimit, type ReadText } from './memory-limit';

const GiB = 1024 ** 3;
const meminfo = (bytes: number): string => `MemTotal:       ${bytes / 1024} kB\nMemFree:         1234 kB\n`;

/** A machine made of the files in `files`; any other file cannot be read. */
const machine = (files: Record<string, string>): ReadText => (file) => files[file];

describe('readMemoryLimit', () => {
  it('is MemTotal when the cgroup sets no limit', () => {
    const read = machine({ '/proc/meminfo': meminfo(24 * GiB), '/proc/self/cgroup': '0::/kubepods/pod1/c1\n', '/sys/fs/cgroup/kubepods/pod1/c1/memory.max': 'max\n' });
    expect(readMemoryLimit(read)).toEqual({ bytes: 24 * GiB, source: 'MemTotal (/proc/meminfo)' });
  });

  it('is the cgroup v2 memory.max of the process, or of an ancestor, when it is below MemTotal', () => {
    const own = machine({ '/proc/meminfo': meminfo(24 * GiB), '/proc/self/cgroup': '0::/kubepods/pod1/c1\n', '/sys/fs/cgroup/kubepods/pod1/c1/memory.max': `${8 * GiB}\n` });
    expect(readMemoryLimit(own)).toEqual({ bytes: 8 * GiB, source: 'the cgroup memory limit (/sys/fs/cgroup/kubepods/pod1/c1/memory.max)' });
    const ancestor = machine({
      '/proc/meminfo': meminfo(24 * GiB),
      '/proc/self/cgroup': '0::/kubepods/pod1/c1\n',
      '/sys/fs/cgroup/kubepods/pod1/c1/memory.max': 'max\n',
      '/sys/fs/cgroup/kubepods/pod1/memory.max': `${6 * GiB}\n`,
      '/sys/fs/cgroup/kubepods/memory.max': `${20 * GiB}\n`,
    });
    expect(readMemoryLimit(ancestor)?.bytes).toBe(6 * GiB);
  });

  it('reads a cgroup namespace root (0::/) at /sys/fs/cgroup/memory.max', () => {
    const read = machine({ '/proc/meminfo': meminfo(24 * GiB), '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/memory.max': `${2 * GiB}\n` });
    expect(readMemoryLimit(read)?.bytes).toBe(2 * GiB);
  });

  it('reads cgroup v1 memory.limit_in_bytes, where no limit is a huge number', () => {
    const limited = machine({ '/proc/meminfo': meminfo(24 * GiB), '/proc/self/cgroup': '4:memory:/docker/abc\n1:cpu:/docker/abc\n', '/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes': `${3 * GiB}\n` });
    expect(readMemoryLimit(limited)?.bytes).toBe(3 * GiB);
    const unlimited = machine({ '/proc/meminfo': meminfo(24 * GiB), '/proc/self/cgroup': '4:memory:/\n', '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n' });
    expect(readMemoryLimit(unlimited)?.bytes).toBe(24 * GiB);
  });

  it('is MemTotal when the cgroup limit is above it, and undefined when nothing can be read', () => {
    const above = machine({ '/proc/meminfo': meminfo(4 * GiB), '/proc/self/cgroup': '0::/a\n', '/sys/fs/cgroup/a/memory.max': `${8 * GiB}\n` });
    expect(readMemoryLimit(above)?.bytes).toBe(4 * GiB);
    expect(readMemoryLimit(machine({}))).toBeUndefined();
  });
});
