import * as fs from 'node:fs';
import * as path from 'node:path';
import { ObjectStoreError } from './errors';
import { LocalDirStore } from './local-dir';
import { S3Store } from './s3';
import type { ObjectStore } from './store';

/** A store and the prefix under it that a source string names. */
export interface OpenedSource {
  store: ObjectStore;
  /** Empty, or ending with `/`. */
  prefix: string;
}

const S3_SCHEME = /^s3:\/\//i;
const HINT = 'pass s3://BUCKET/PREFIX or the path of an existing local folder';

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
  if (bucket === '') throw new ObjectStoreError('InvalidArgument', `"${source}" names no bucket: ${HINT}`);
  const problem = bucketNameProblem(bucket);
  if (problem) throw new ObjectStoreError('InvalidArgument', `"${bucket}" in "${source}" is not a valid bucket name: ${problem}`);
  if (rawPrefix.startsWith('/') || rawPrefix.includes('//')) {
    throw new ObjectStoreError('InvalidArgument', `the prefix in "${source}" has an empty path segment ("//"): ${HINT}`);
  }
  return { bucket, prefix: rawPrefix === '' || rawPrefix.endsWith('/') ? rawPrefix : `${rawPrefix}/` };
}

/**
 * Opens what a user passed as a source: `s3://bucket/prefix` (endpoint, region and credentials from `env`, the
 * standard AWS variables) or a local folder used as the bucket (prefix '').
 */
export function openSource(source: string, env: NodeJS.ProcessEnv = process.env): OpenedSource {
  if (source.trim() === '') throw new ObjectStoreError('InvalidArgument', `empty source: ${HINT}`);
  if (S3_SCHEME.test(source)) {
    const { bucket, prefix } = parseS3Url(source);
    return { store: new S3Store({ bucket }, env), prefix };
  }
  if (/^s3:/i.test(source)) throw new ObjectStoreError('InvalidArgument', `"${source}" is a malformed S3 URL: write s3://BUCKET/PREFIX`);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(source);
  if (scheme) throw new ObjectStoreError('InvalidArgument', `"${source}": the scheme ${scheme[1]}:// is not supported; ${HINT}`);
  const folder = path.resolve(source);
  let stats: fs.Stats;
  try {
    stats = fs.statSync(folder);
  } catch {
    throw new ObjectStoreError('InvalidArgument', `the folder ${folder} (from "${source}") does not exist: create it, or ${HINT}`);
  }
  if (!stats.isDirectory()) throw new ObjectStoreError('InvalidArgument', `${folder} (from "${source}") is not a folder: ${HINT}`);
  return { store: new LocalDirStore(folder), prefix: '' };
}
