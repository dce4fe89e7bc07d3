// Mountpoint for Amazon S3 (mount-s3) on the same bucket, when it is on PATH (not packaged by Debian: no recipe here).
import { fuseSide, versionLine, type MountPlan } from './fuse-side';
import { caEnv, type Side, type Volume } from './side';

/** mount-s3's flags besides the endpoint, region and prefix; everything else is its default. */
export const MOUNT_S3_FLAGS = [
  // versitygw on 127.0.0.1 has no virtual-host names.
  '--force-path-style',
  // Without these the write row's O_TRUNC create and the clean-up would be refused (mount-s3 is read-mostly by default).
  '--allow-delete', '--allow-overwrite',
  '--allow-other',
];

/** The command line and environment of a mount-s3 mount of `volume` at `mountpoint` (credentials in AWS_* only). */
export function mountS3Plan(volume: Volume, mountpoint: string, scratch: string): MountPlan {
  return {
    args: [volume.bucket, mountpoint, '--foreground', '--prefix', `${volume.prefix}/`, '--endpoint-url', volume.endpoint, '--region', volume.region, ...MOUNT_S3_FLAGS],
    env: { PATH: process.env.PATH, HOME: scratch, AWS_ACCESS_KEY_ID: volume.accessKeyId, AWS_SECRET_ACCESS_KEY: volume.secretAccessKey, AWS_REGION: volume.region, ...caEnv(volume, 'AWS_CA_BUNDLE') },
    secrets: [],
  };
}

/** The Mountpoint for S3 side. */
export function mountS3Side(): Side {
  return fuseSide({
    name: 'mount-s3',
    command: 'mount-s3',
    fsType: 'fuse.mountpoint-s3',
    settings: `\`mount-s3 BUCKET MNT --foreground --prefix vol/ --endpoint-url ENDPOINT --region REGION ${MOUNT_S3_FLAGS.join(' ')}\`; all else default (no --cache: every run cold); credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY`,
    trust: 'AWS_CA_BUNDLE=CERT in its environment (read by mount-s3 versions with --ca-bundle; older ones trust only the system\'s CAs)',
    parseVersion: (output) => versionLine(output, /mount-s3\s+(\S+)/),
    plan: mountS3Plan,
  });
}
