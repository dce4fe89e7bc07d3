// granary's own mount: the built CLI, `granary mount s3://BUCKET/PREFIX MOUNTPOINT [FLAGS]` (the main table: defaults only).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { version as granaryVersion } from '../../src/version';
import { startMount } from './mount-process';
import { caEnv, type Attachment, type MountAttachment, type Side, type Volume } from './side';

/** The built CLI (the bench runs from dist/bench/, the CLI is dist/src/cli/index.js). */
export const GRANARY_CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'index.js');

/** The granary side running the CLI at `cli` (default: this checkout's build); `revision` is the git revision it came from. */
export function granarySide(revision: string, cli = GRANARY_CLI): Side {
  return {
    name: 'granary',
    kind: 'mount',
    settings: '`granary mount s3://BUCKET/vol MNT` with every default (endpoint and credentials from AWS_* in its environment)',
    trust: 'NODE_EXTRA_CA_CERTS=CERT in the mount\'s environment (what a mount with a private CA is given)',
    version: async () => `${granaryVersion} (${revision})`,
    attach: (volume: Volume, scratch: string): Promise<Attachment> => mountGranary(cli, volume, scratch),
  };
}

/** Mounts the volume with the CLI at `cli` in `scratch`/mnt, with `flags` after the mountpoint (e.g. the cache's); logs to `scratch`/granary-mount.log. */
export async function mountGranary(cli: string, volume: Volume, scratch: string, flags: readonly string[] = []): Promise<MountAttachment> {
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run 'npm run build' first`);
  const mountpoint = path.join(scratch, 'mnt');
  const mount = await startMount({
    command: process.execPath,
    args: [cli, 'mount', `s3://${volume.bucket}/${volume.prefix}`, mountpoint, ...flags],
    env: {
      PATH: process.env.PATH,
      AWS_ENDPOINT_URL: volume.endpoint,
      AWS_REGION: volume.region,
      AWS_ACCESS_KEY_ID: volume.accessKeyId,
      AWS_SECRET_ACCESS_KEY: volume.secretAccessKey,
      ...caEnv(volume, 'NODE_EXTRA_CA_CERTS'),
    },
    mountpoint,
    fsType: 'fuse.granary',
    logFile: path.join(scratch, 'granary-mount.log'),
    // SIGTERM is granary's own way to unmount and exit.
    unmount: async (child) => { child.kill('SIGTERM'); },
  });
  return { kind: 'mount', ...mount };
}
