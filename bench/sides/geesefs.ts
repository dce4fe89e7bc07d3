// geesefs on the same bucket, when it is on PATH (not packaged by Debian: no recipe here).
import { fuseSide, versionLine, type MountPlan } from './fuse-side';
import { caEnv, type Side, type Volume } from './side';

/** geesefs's flags besides the endpoint and region; everything else is its default. */
export const GEESEFS_FLAGS = [
  // Without it geesefs assumes Yandex's listing dialect; versitygw speaks ListObjectsV2.
  '--list-type=2',
  '-o', 'allow_other',
];

/** The command line and environment of a geesefs mount of `volume` at `mountpoint` (credentials in AWS_* only). */
export function geesefsPlan(volume: Volume, mountpoint: string, scratch: string): MountPlan {
  return {
    args: ['-f', '--endpoint', volume.endpoint, '--region', volume.region, ...GEESEFS_FLAGS, `${volume.bucket}:${volume.prefix}`, mountpoint],
    env: { PATH: process.env.PATH, HOME: scratch, AWS_ACCESS_KEY_ID: volume.accessKeyId, AWS_SECRET_ACCESS_KEY: volume.secretAccessKey, ...caEnv(volume, 'SSL_CERT_FILE') },
    secrets: [],
  };
}

/** The geesefs side. */
export function geesefsSide(): Side {
  return fuseSide({
    name: 'geesefs',
    command: 'geesefs',
    fsType: 'fuse.geesefs',
    settings: `\`geesefs -f --endpoint ENDPOINT --region REGION ${GEESEFS_FLAGS.join(' ')} BUCKET:vol MNT\`; all else default (--memory-limit 1000 MB of cache in RAM); credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY`,
    trust: 'SSL_CERT_FILE=CERT in its environment (Go\'s crypto/x509 takes its roots from it)',
    parseVersion: (output) => versionLine(output, /version\s+(\S+)/i),
    plan: geesefsPlan,
    // geesefs is built on (a fork of) aws-sdk-go v1.
    sendsMixedCaseExpect: true,
  });
}
