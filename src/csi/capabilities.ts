import { CsiError } from './errors';
import type { VolumeCapability__Output, _csi_v1_VolumeCapability_AccessMode_Mode__Output } from './generated/csi/v1/VolumeCapability';

/** A CSI access mode by name, e.g. 'MULTI_NODE_READER_ONLY'. */
export type AccessMode = _csi_v1_VolumeCapability_AccessMode_Mode__Output;

/**
 * Every access mode granary serves. A volume is a prefix any number of mount processes can open,
 * so all real modes are supported, MULTI_NODE_MULTI_WRITER included. Its caveat: S3 has no locks
 * and no appends, so two writers of the same file race and the last close wins; writers on
 * different nodes must write different files (the usual pattern: one checkpoint file per rank).
 * SINGLE_NODE_SINGLE_WRITER and SINGLE_NODE_MULTI_WRITER are accepted because they are narrower
 * than modes already served, although no CO sends them unless asked to through the
 * SINGLE_NODE_MULTI_WRITER capability, which granary does not advertise.
 */
export const SUPPORTED_ACCESS_MODES: ReadonlySet<AccessMode> = new Set<AccessMode>([
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'MULTI_NODE_READER_ONLY',
  'MULTI_NODE_SINGLE_WRITER',
  'MULTI_NODE_MULTI_WRITER',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
]);

const READ_ONLY_MODES: ReadonlySet<AccessMode> = new Set<AccessMode>(['SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY']);

/** True when the access mode only allows reading, so the mount must be read-only. */
export function isReadOnlyMode(mode: AccessMode | number | null | undefined): boolean {
  return READ_ONLY_MODES.has(mode as AccessMode);
}

/**
 * Why granary cannot serve this capability, or undefined when it can. `field` names the
 * capability in the message (e.g. 'volume_capabilities[1]') so the user knows what to fix.
 */
export function capabilityProblem(capability: VolumeCapability__Output | null | undefined, field = 'volume_capability'): string | undefined {
  if (!capability) return `${field} is required`;
  // Decoded with `oneofs: true`, the chosen access type is named by access_type; check the member too
  // so a hand-built request without access_type is judged the same way.
  if (capability.access_type === 'block' || capability.block) {
    return `${field}: granary volumes are filesystems; block access is not supported (use volumeMode: Filesystem)`;
  }
  if (capability.access_type !== 'mount' && !capability.mount) {
    return `${field}: access_type must be mount (granary volumes are filesystems)`;
  }
  // fs_type is ignored on purpose: the filesystem is always granary's FUSE one, and some COs fill
  // in a default (e.g. ext4) the user never chose; refusing it would break ordinary PVCs.
  const mode = capability.access_mode?.mode;
  if (mode === undefined || mode === 'UNKNOWN' || !SUPPORTED_ACCESS_MODES.has(mode)) {
    return `${field}: access_mode.mode ${JSON.stringify(mode ?? 'unset')} is not supported; use one of ${[...SUPPORTED_ACCESS_MODES].join(', ')}`;
  }
  return undefined;
}

/**
 * Checks the capabilities of a request and throws INVALID_ARGUMENT naming the first one granary
 * cannot serve. Pass an array (CreateVolume's volume_capabilities) or one capability
 * (NodeStage/NodePublish's volume_capability); `field` is the request field, for messages.
 */
export function validateVolumeCapabilities(
  capabilities: readonly (VolumeCapability__Output | null | undefined)[] | VolumeCapability__Output | null | undefined,
  field = 'volume_capabilities',
): void {
  if (!Array.isArray(capabilities)) {
    const problem = capabilityProblem(capabilities as VolumeCapability__Output | null | undefined, field);
    if (problem) throw new CsiError('INVALID_ARGUMENT', problem);
    return;
  }
  if (capabilities.length === 0) throw new CsiError('INVALID_ARGUMENT', `${field} is required: give at least one volume capability`);
  capabilities.forEach((capability, index) => {
    const problem = capabilityProblem(capability, `${field}[${index}]`);
    if (problem) throw new CsiError('INVALID_ARGUMENT', problem);
  });
}
