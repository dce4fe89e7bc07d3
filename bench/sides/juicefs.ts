// JuiceFS on the same server, when `juicefs` is on PATH (not packaged by Debian: no recipe here). JuiceFS keeps
// files as chunks in its own layout plus a metadata engine, so it cannot see the bucket's files as they are: once
// per bench it formats a volume (SQLite metadata, chunks under BUCKET/juicefs-bench/) and copies the volume's
// files in through a mount (untimed); each run then mounts it afresh with an empty cache dir.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from '../exec';
import { getBytes } from '../workloads/store-ops';
import { fuseSide, versionLine, type MountPlan } from './fuse-side';
import { startMount } from './mount-process';
import { caEnv, volumeStore, type Side, type Volume } from './side';

/** The JuiceFS volume's name: its chunks go under BUCKET/NAME/. */
export const JUICEFS_NAME = 'juicefs-bench';

/** The metadata URL of the bench's JuiceFS volume, kept in `stateDir` for the whole bench. */
export const metaUrl = (stateDir: string) => `sqlite3://${path.join(stateDir, 'meta.db')}`;

/** The bench-wide folder of JuiceFS's metadata: beside the runs' scratch dirs, removed with them at the end. */
export const stateDirOf = (scratch: string) => path.join(path.dirname(scratch), 'juicefs');

/** `juicefs format` of the bench's volume on `volume`'s server (object store credentials in ACCESS_KEY/SECRET_KEY only). */
export function juicefsFormatPlan(volume: Volume, stateDir: string): MountPlan {
  return {
    args: ['format', '--storage', 's3', '--bucket', `${volume.endpoint}/${volume.bucket}`, metaUrl(stateDir), JUICEFS_NAME],
    env: { PATH: process.env.PATH, HOME: stateDir, ACCESS_KEY: volume.accessKeyId, SECRET_KEY: volume.secretAccessKey, ...caEnv(volume, 'SSL_CERT_FILE') },
    secrets: [],
  };
}

/** `juicefs mount` of the bench's volume at `mountpoint`, cache in `scratch` (the credentials are in the metadata since format). */
export function juicefsMountPlan(volume: Volume, mountpoint: string, scratch: string): MountPlan {
  return {
    args: ['mount', metaUrl(stateDirOf(scratch)), mountpoint, '--cache-dir', path.join(scratch, 'cache'), '-o', 'allow_other'],
    env: { PATH: process.env.PATH, HOME: scratch, ...caEnv(volume, 'SSL_CERT_FILE') },
    secrets: [],
  };
}

/** Copies every object under the volume's prefix into the JuiceFS mount at `root` (untimed set-up). */
async function copyVolumeIn(volume: Volume, root: string): Promise<void> {
  const store = volumeStore(volume);
  try {
    let token: string | undefined;
    do {
      const page = await store.list({ prefix: `${volume.prefix}/`, ...(token && { continuationToken: token }) });
      for (const object of page.objects) {
        const file = path.join(root, object.key.slice(volume.prefix.length + 1));
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, await getBytes(store, object.key));
      }
      token = page.nextToken;
    } while (token);
  } finally {
    store.close();
  }
}

/** Formats the bench's volume and fills it, the first time only. */
async function prepareVolume(volume: Volume, scratch: string): Promise<void> {
  const stateDir = stateDirOf(scratch);
  if (fs.existsSync(path.join(stateDir, 'filled'))) return;
  fs.mkdirSync(stateDir, { recursive: true });
  const format = juicefsFormatPlan(volume, stateDir);
  const formatted = await run('juicefs', format.args, { env: format.env });
  if (formatted.code !== 0) throw new Error(`juicefs format failed (${formatted.code}): ${formatted.stderr.trim().split('\n').pop() ?? ''}`);
  const fillScratch = path.join(stateDir, 'fill');
  fs.mkdirSync(fillScratch, { recursive: true });
  const mountpoint = path.join(fillScratch, 'mnt');
  const plan = juicefsMountPlan(volume, mountpoint, fillScratch);
  const mount = await startMount({
    command: 'juicefs', args: plan.args, env: plan.env, mountpoint, fsType: 'fuse.juicefs', logFile: path.join(stateDir, 'fill.log'),
    unmount: async (_child, root) => { await run('juicefs', ['umount', root]); },
  });
  try {
    await copyVolumeIn(volume, mount.root);
  } finally {
    await mount.detach();
  }
  fs.writeFileSync(path.join(stateDir, 'filled'), '');
}

/** The JuiceFS side. */
export function juicefsSide(): Side {
  return fuseSide({
    name: 'juicefs',
    command: 'juicefs',
    fsType: 'fuse.juicefs',
    settings: `\`juicefs format --storage s3 --bucket ENDPOINT/BUCKET sqlite3://STATE/meta.db ${JUICEFS_NAME}\` once (object store credentials in ACCESS_KEY/SECRET_KEY), the volume's files copied in (untimed), ` +
      'then per run `juicefs mount sqlite3://STATE/meta.db MNT --cache-dir SCRATCH/cache -o allow_other`; all else default (4 MiB blocks, 64 MiB buffer, 100 GiB disk cache, empty each run)',
    trust: 'SSL_CERT_FILE=CERT in the environment of its format and mount (Go\'s crypto/x509 takes its roots from it)',
    parseVersion: (output) => versionLine(output, /version\s+(\S+)/i),
    prepare: prepareVolume,
    plan: juicefsMountPlan,
    notObjects: 'not comparable: JuiceFS stores chunks, not the file as an object the bench can check',
  });
}
