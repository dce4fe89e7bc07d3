// rclone's mount of the same bucket, configured through its environment only.
import * as path from 'node:path';
import { run } from '../exec';
import { startMount } from './mount-process';
import type { Attachment, Side, Volume } from './side';

/** The remote's name in RCLONE_CONFIG_<NAME>_* variables. */
export const REMOTE = 'bench';

/** The flags besides the remote and the mountpoint; everything else is rclone's default. */
export const RCLONE_FLAGS = [
  // Needed for writes: without a cache rclone refuses a write that is not strictly sequential, and some openers (O_TRUNC) with it.
  '--vfs-cache-mode', 'writes',
  // Upload as soon as the file is closed (the default waits 5 s), so that "until durable" measures the upload, not a timer.
  '--vfs-write-back', '0s',
  '--allow-other',
];

/** The rclone side. */
export function rcloneSide(): Side {
  return {
    name: 'rclone',
    kind: 'mount',
    // rclone 1.60 (Debian's) is built on aws-sdk-go v1.
    sendsMixedCaseExpect: true,
    settings: `\`rclone mount ${REMOTE}:BUCKET/vol MNT ${RCLONE_FLAGS.join(' ')} --cache-dir TMP\`; all else default ` +
      '(--buffer-size 16Mi, --vfs-read-chunk-size 128Mi doubling without limit, --max-read-ahead 128Ki, --async-read, --dir-cache-time 5m, --attr-timeout 1s, --transfers 4, --s3-upload-cutoff 200Mi, --s3-chunk-size 5Mi, --s3-upload-concurrency 4); ' +
      `remote from the environment (RCLONE_CONFIG_${REMOTE.toUpperCase()}_TYPE=s3, _PROVIDER=Other, _ENDPOINT, _REGION, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY)`,
    trust: '`--ca-cert CERT`',
    async version() {
      const result = await run('rclone', ['version']);
      if (result.code !== 0) throw new Error(`rclone is not installed: run 'bash bench/install.sh' (${result.stderr.trim()})`);
      return result.stdout.split('\n')[0]?.replace(/^rclone\s+/, '').trim() ?? 'unknown';
    },
    async attach(volume: Volume, scratch: string): Promise<Attachment> {
      const prefix = `RCLONE_CONFIG_${REMOTE.toUpperCase()}_`;
      const mountpoint = path.join(scratch, 'mnt');
      const mount = await startMount({
        command: 'rclone',
        args: ['mount', `${REMOTE}:${volume.bucket}/${volume.prefix}`, mountpoint, ...RCLONE_FLAGS, '--cache-dir', path.join(scratch, 'cache'), ...(volume.caFile ? ['--ca-cert', volume.caFile] : [])],
        env: {
          PATH: process.env.PATH,
          HOME: scratch,
          [`${prefix}TYPE`]: 's3',
          [`${prefix}PROVIDER`]: 'Other',
          [`${prefix}ENDPOINT`]: volume.endpoint,
          [`${prefix}REGION`]: volume.region,
          [`${prefix}ACCESS_KEY_ID`]: volume.accessKeyId,
          [`${prefix}SECRET_ACCESS_KEY`]: volume.secretAccessKey,
        },
        mountpoint,
        fsType: 'fuse.rclone',
        logFile: path.join(scratch, 'rclone-mount.log'),
        unmount: async (_child, root) => {
          const result = await run('fusermount3', ['-u', root]);
          if (result.code !== 0) throw new Error(`fusermount3 -u ${root}: ${result.stderr.trim()}`);
        },
      });
      return { kind: 'mount', ...mount };
    },
  };
}
