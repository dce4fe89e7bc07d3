// s3fs-fuse (Debian's package) on the same bucket, tuned as a user after throughput would tune it.
import * as path from 'node:path';
import { fuseSide, versionLine, type MountPlan } from './fuse-side';
import { caEnv, type Side, type Volume } from './side';

/** s3fs's options besides the endpoint and the credentials file. */
export const S3FS_OPTIONS = [
  // versitygw on 127.0.0.1 has no virtual-host names.
  'use_path_request_style',
  // 16 parallel requests for a big file's parts and ranges (default 5), as the other sides have 16 in flight.
  'parallel_count=16',
  // 16 MB parts (default 10): fewer, bigger requests for big files, still many in flight.
  'multipart_size=16',
  'allow_other',
];

/** The command line and credentials of an s3fs mount of `volume` at `mountpoint`; the passwd file goes in `scratch`. */
export function s3fsPlan(volume: Volume, mountpoint: string, scratch: string): MountPlan {
  const passwd = path.join(scratch, 'passwd-s3fs');
  // -o endpoint is the region SigV4 signs for.
  const options = [`url=${volume.endpoint}`, `endpoint=${volume.region}`, `passwd_file=${passwd}`, ...S3FS_OPTIONS];
  return {
    args: [`${volume.bucket}:/${volume.prefix}`, mountpoint, '-f', '-o', options.join(',')],
    // s3fs hands CURL_CA_BUNDLE to libcurl as its CA file; verification stays on (no no_check_certificate, ssl_verify_hostname=2).
    env: { PATH: process.env.PATH, HOME: scratch, ...caEnv(volume, 'CURL_CA_BUNDLE') },
    secrets: [{ path: passwd, content: `${volume.accessKeyId}:${volume.secretAccessKey}\n` }],
  };
}

/** The s3fs side. */
export function s3fsSide(): Side {
  return fuseSide({
    name: 's3fs',
    command: 's3fs',
    fsType: 'fuse.s3fs',
    settings: `\`s3fs BUCKET:/vol MNT -f -o url=ENDPOINT,endpoint=REGION,passwd_file=SCRATCH/passwd-s3fs,${S3FS_OPTIONS.join(',')}\`; all else default (no disk cache: use_cache off, so every run is cold). ` +
      'parallel_count=16 and multipart_size=16 are what its wiki suggests for large files, scaled to the 16 requests in flight the other sides get; credentials in a 0600 passwd file in the run\'s scratch dir',
    trust: 'CURL_CA_BUNDLE=CERT in its environment (s3fs passes it to libcurl; certificate and host name checks on, their defaults)',
    parseVersion: (output) => versionLine(output, /File System (V[\d.]+)/),
    plan: s3fsPlan,
  });
}
