import * as fs from 'node:fs';
import * as path from 'node:path';
import { ObjectStoreError } from './errors';
import { LocalDirStore } from './local-dir';
import { S3Store } from './s3';
import { parseS3Url, S3_SCHEME, SOURCE_HINT } from './s3-url';
import type { ObjectStore } from './store';

/** A store and the prefix under it that a source string names. */
export interface OpenedSource {
  store: ObjectStore;
  /** Empty, or ending with `/`. */
  prefix: string;
}

/**
 * Opens what a user passed as a source: `s3://bucket/prefix` (endpoint, region and credentials from `env`, the
 * standard AWS variables) or a local folder used as the bucket (prefix '').
 */
export function openSource(source: string, env: NodeJS.ProcessEnv = process.env): OpenedSource {
  if (source.trim() === '') throw new ObjectStoreError('InvalidArgument', `empty source: ${SOURCE_HINT}`);
  if (S3_SCHEME.test(source)) {
    const { bucket, prefix } = parseS3Url(source);
    return { store: new S3Store({ bucket }, env), prefix };
  }
  if (/^s3:/i.test(source)) throw new ObjectStoreError('InvalidArgument', `"${source}" is a malformed S3 URL: write s3://BUCKET/PREFIX`);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(source);
  if (scheme) throw new ObjectStoreError('InvalidArgument', `"${source}": the scheme ${scheme[1]}:// is not supported; ${SOURCE_HINT}`);
  const folder = path.resolve(source);
  let stats: fs.Stats;
  try {
    stats = fs.statSync(folder);
  } catch {
    throw new ObjectStoreError('InvalidArgument', `the folder ${folder} (from "${source}") does not exist: create it, or ${SOURCE_HINT}`);
  }
  if (!stats.isDirectory()) throw new ObjectStoreError('InvalidArgument', `${folder} (from "${source}") is not a folder: ${SOURCE_HINT}`);
  return { store: new LocalDirStore(folder), prefix: '' };
}
