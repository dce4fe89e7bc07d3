import { CsiError } from './errors';

/** Where a volume lives: a bucket and a key prefix inside it (a prefix is '' or ends with '/'). */
export interface VolumeLocation {
  bucket: string;
  prefix: string;
}

/** Longest volume ID the CSI spec lets a CO store (Size Limits: 128 bytes). */
export const MAX_VOLUME_ID_BYTES = 128;

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Why `name` is not a valid S3 bucket name, or undefined when it is. */
export function bucketNameProblem(name: string): string | undefined {
  if (!BUCKET_NAME.test(name)) return 'a bucket name has 3-63 characters: lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit';
  if (name.includes('..')) return 'a bucket name cannot contain two adjacent dots';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return 'a bucket name cannot look like an IP address';
  return undefined;
}

/** Why `prefix` (without its trailing '/') is not a safe key prefix, or undefined when it is. */
export function prefixProblem(prefix: string): string | undefined {
  if (prefix === '') return undefined;
  if (prefix.startsWith('/')) return 'the prefix must not start with /';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(prefix)) return 'the prefix must not contain control characters';
  for (const segment of prefix.split('/')) {
    if (segment === '') return 'the prefix must not contain empty path segments (//)';
    if (segment === '.' || segment === '..') return 'the prefix must not contain . or .. segments';
  }
  if (Buffer.byteLength(prefix) > 900) return 'the prefix is longer than 900 bytes';
  return undefined;
}

/**
 * Parses a volume ID. The ID is the volume's location written `bucket/prefix` (or just `bucket`
 * for a whole bucket, which the node mounts only when the volume allows it: parameters.ts
 * checkWholeBucket): the same form a user writes as volumeHandle of a static PersistentVolume.
 */
export function parseVolumeId(volumeId: string): VolumeLocation {
  if (!volumeId) throw new CsiError('INVALID_ARGUMENT', 'volume_id is required');
  const slash = volumeId.indexOf('/');
  const bucket = slash < 0 ? volumeId : volumeId.slice(0, slash);
  const rest = slash < 0 ? '' : volumeId.slice(slash + 1).replace(/\/$/, '');
  const problem = bucketNameProblem(bucket) ?? prefixProblem(rest);
  if (problem) {
    throw new CsiError('INVALID_ARGUMENT', `volume_id ${JSON.stringify(volumeId)} is not of the form bucket/prefix: ${problem}`);
  }
  return { bucket, prefix: rest === '' ? '' : `${rest}/` };
}

/** Formats a location as its volume ID (`bucket/prefix`, no trailing slash). */
export function formatVolumeId(location: VolumeLocation): string {
  const prefix = location.prefix.replace(/\/$/, '');
  return prefix ? `${location.bucket}/${prefix}` : location.bucket;
}
