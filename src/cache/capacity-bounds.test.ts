import { diskClampWarning, fitDiskCapacity, judgeRamBytes, RAM_HEADROOM_BYTES } from './capacity-bounds';

const GiB = 1024 ** 3;
const machine24 = { bytes: 24 * GiB, source: 'MemTotal (/proc/meminfo)' };

describe('judgeRamBytes', () => {
  it('refuses more RAM than the process can have, naming the flag, the value and what the machine has', () => {
    const verdict = judgeRamBytes(100 * GiB, machine24);
    expect(verdict).toEqual({ refuse: expect.stringContaining('--ram-bytes 100 GiB') });
    const message = (verdict as { refuse: string }).refuse;
    expect(message).toContain('MemTotal (/proc/meminfo) is 24 GiB');
    expect(message.split('\n')).toHaveLength(1);
  });

  it('warns when less than the headroom is left for the rest of the process, and says nothing otherwise or when the memory is unknown', () => {
    const tight = machine24.bytes - RAM_HEADROOM_BYTES + 1;
    expect(judgeRamBytes(tight, machine24)).toEqual({ warn: expect.stringMatching(/^--ram-bytes .* leaves less than 1 GiB .*MemTotal \(\/proc\/meminfo\) is 24 GiB.* at most 23 GiB/) });
    expect(judgeRamBytes(machine24.bytes, machine24)).toHaveProperty('warn');
    expect(judgeRamBytes(machine24.bytes - RAM_HEADROOM_BYTES, machine24)).toEqual({});
    expect(judgeRamBytes(100 * GiB, undefined)).toEqual({});
  });
});

describe('fitDiskCapacity', () => {
  it('lowers a request to the free space plus the blocks already held, less the floor', () => {
    const facts = { requestedBytes: 10 * 1024 * GiB, availableBytes: 77 * GiB, heldBytes: 3 * GiB, floorBytes: 5 * GiB };
    const fit = fitDiskCapacity(facts);
    expect(fit).toEqual({ capacityBytes: 75 * GiB, holdableBytes: 75 * GiB, clamped: true });
    const warning = diskClampWarning('/var/cache/granary', facts, fit);
    expect(warning).toMatch(/^--disk-bytes 10 TiB is more than the filesystem of \/var\/cache\/granary can hold: it has 77 GiB free .* 3 GiB .*--disk-free-floor of 5 GiB.* at most 75 GiB/);
  });

  it('keeps a request that fits, and never goes below zero', () => {
    expect(fitDiskCapacity({ requestedBytes: 50 * GiB, availableBytes: 77 * GiB, heldBytes: 0, floorBytes: 5 * GiB })).toEqual({ capacityBytes: 50 * GiB, holdableBytes: 72 * GiB, clamped: false });
    expect(fitDiskCapacity({ requestedBytes: 50 * GiB, availableBytes: 1 * GiB, heldBytes: 0, floorBytes: 5 * GiB })).toEqual({ capacityBytes: 0, holdableBytes: 0, clamped: true });
  });
});
