// What an s3:// URL names (bucket, prefix) and whether a bucket name is valid: plain string rules, kept apart from
// the store itself so that configuration and the command line check them without loading the S3 client.
import { ObjectStoreError } from './errors';

/** The scheme of an S3 source, in any case. */
export const S3_SCHEME = /^s3:\/\//i;
/** What a valid source looks like, for error messages. */
export const SOURCE_HINT = 'pass s3://BUCKET/PREFIX or the path of an existing local folder';

/** Why `name` is not a valid S3 bucket name (general-purpose bucket rules), or undefined when it is. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'it must be 3 to 63 characters long';
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) return 'it may only hold lower-case letters, digits, dots and hyphens, and must start and end with a letter or digit';
  if (name.includes('..')) return 'it must not hold two adjacent dots';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'it must not look like an IP address';
  if (name.startsWith('xn--') || name.startsWith('sthree-')) return 'it must not start with xn-- or sthree-';
  if (name.endsWith('-s3alias') || name.endsWith('--ol-s3')) return 'it must not end with -s3alias or --ol-s3';
  return undefined;
}

/** Parses `s3://bucket/some/prefix` into the bucket and the prefix (normalised to end with `/` unless empty). */
export function parseS3Url(source: string): { bucket: string; prefix: string } {
  const rest = source.replace(S3_SCHEME, '');
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const rawPrefix = slash < 0 ? '' : rest.slice(slash + 1);
  if (bucket === '') throw new ObjectStoreError('InvalidArgument', `"${source}" names no bucket: ${SOURCE_HINT}`);
  const problem = bucketNameProblem(bucket);
  if (problem) throw new ObjectStoreError('InvalidArgument', `"${bucket}" in "${source}" is not a valid bucket name: ${problem}`);
  if (rawPrefix.startsWith('/') || rawPrefix.includes('//')) {
    throw new ObjectStoreError('InvalidArgument', `the prefix in "${source}" has an empty path segment ("//"): ${SOURCE_HINT}`);
  }
  return { bucket, prefix: rawPrefix === '' || rawPrefix.endsWith('/') ? rawPrefix : `${rawPrefix}/` };
}
