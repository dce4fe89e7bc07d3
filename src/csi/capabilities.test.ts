import { capabilityProblem, isReadOnlyMode, SUPPORTED_ACCESS_MODES, validateVolumeCapabilities, type AccessMode } from './capabilities';
import type { VolumeCapability__Output } from './generated/csi/v1/VolumeCapability';

/** A mount capability as the gRPC loader decodes it. */
function mount(mode: AccessMode | number): VolumeCapability__Output {
  return { access_type: 'mount', mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: mode as AccessMode } };
}

describe('volume capabilities', () => {
  it.each([...SUPPORTED_ACCESS_MODES])('accepts mount access with %s', (mode) => {
    expect(capabilityProblem(mount(mode))).toBeUndefined();
    expect(() => validateVolumeCapabilities([mount(mode)])).not.toThrow();
  });

  it('ignores fs_type: the filesystem is always granary', () => {
    expect(capabilityProblem({ ...mount('SINGLE_NODE_WRITER'), mount: { fs_type: 'ext4', mount_flags: [], volume_mount_group: '' } })).toBeUndefined();
  });

  it('refuses block access, saying granary volumes are filesystems', () => {
    const block: VolumeCapability__Output = { access_type: 'block', block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
    expect(() => validateVolumeCapabilities([mount('SINGLE_NODE_WRITER'), block])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^volume_capabilities\[1\]: granary volumes are filesystems/) }),
    );
  });

  it('refuses a capability with no access type', () => {
    expect(capabilityProblem({ access_mode: { mode: 'SINGLE_NODE_WRITER' } })).toMatch(/access_type must be mount/);
  });

  it.each<[string, AccessMode | number | undefined]>([
    ['UNKNOWN', 'UNKNOWN'],
    ['a number outside the enum', 42],
    ['no access mode', undefined],
  ])('refuses %s, listing the supported modes', (_name, mode) => {
    const capability = mode === undefined ? { ...mount('SINGLE_NODE_WRITER'), access_mode: null } : mount(mode);
    expect(capabilityProblem(capability)).toMatch(/access_mode\.mode .* is not supported; use one of SINGLE_NODE_WRITER, /);
  });

  it('requires at least one capability in a list, and the capability itself when single', () => {
    expect(() => validateVolumeCapabilities([])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/volume_capabilities is required/) }));
    expect(() => validateVolumeCapabilities(undefined, 'volume_capability')).toThrow('volume_capability is required');
    expect(() => validateVolumeCapabilities(null, 'volume_capability')).toThrow('volume_capability is required');
    expect(() => validateVolumeCapabilities(mount('MULTI_NODE_READER_ONLY'), 'volume_capability')).not.toThrow();
  });

  it('knows which modes are read-only', () => {
    expect(isReadOnlyMode('SINGLE_NODE_READER_ONLY')).toBe(true);
    expect(isReadOnlyMode('MULTI_NODE_READER_ONLY')).toBe(true);
    expect(isReadOnlyMode('MULTI_NODE_MULTI_WRITER')).toBe(false);
    expect(isReadOnlyMode('SINGLE_NODE_WRITER')).toBe(false);
    expect(isReadOnlyMode(undefined)).toBe(false);
  });
});
