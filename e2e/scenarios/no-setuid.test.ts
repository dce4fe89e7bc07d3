// No way in through a file in the bucket: an executable object owned by root and shown with any mode
// runs with the caller's ids, never root's. Real `granary mount` processes over the real S3 server:
// the mount always has nosuid,nodev (the kernel ignores setuid/setgid bits and device files on it),
// and the CLI refuses setuid, setgid and sticky bits in --file-mode/--dir-mode. A third test forces a
// setuid mode past the validation, in process, to show nosuid alone already holds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { parseMountConfig } from '../../src/config/mount';
import type { MountedVolume } from '../../src/fs/mount';
import { mountVolume } from '../../src/roles/mount';
import { silentLogger } from '../../src/log/logger';
import { findMount, readMountInfo } from '../../src/system/mountinfo';
import { builtCli } from '../support/built-cli';
import { mountGranary, s3MountEnv, stopAllMounts, withMountLog, type GranaryMount } from '../support/mount';
import { createBucket, s3Client, testS3 } from '../support/s3-server';
import { deleteBucket, makeTemp, putObjects, removeTemp, run, shOk } from './helpers';

jest.setTimeout(180_000);

const PREFIX = 'tools/';
/** How long `granary mount` may take to refuse its flags (node's start on a loaded machine included). */
const REFUSAL_TIMEOUT_MS = 30_000;
/** The uid and gid of "nobody": the unprivileged caller. */
const NOBODY = 65534;

/** A program that prints the ids it runs with: the effective uid is what a setuid bit would change. */
const EUID_PROGRAM = `
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("euid=%d egid=%d\\n", (int)geteuid(), (int)getegid()); return 0; }
`;

let client: S3Client;
let bucket: string;
let base: string;
let mount: GranaryMount | undefined;

/** Runs `program` as uid/gid 65534 with no supplementary groups (util-linux setpriv). */
function runAsNobody(program: string) {
  return run('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', program]);
}

beforeAll(async () => {
  base = makeTemp('no-setuid');
  const source = path.join(base, 'euid.c');
  fs.writeFileSync(source, EUID_PROGRAM);
  // Static: the program needs no loader or library from outside the mount.
  await shOk(`gcc -static -O2 -o ${path.join(base, 'euid')} ${source}`);
  client = s3Client(testS3());
  bucket = await createBucket(testS3(), 'nosuid');
  await putObjects(client, bucket, [[`${PREFIX}euid`, fs.readFileSync(path.join(base, 'euid'))]]);
  for (const dir of ['mnt', 'refused', 'forced']) fs.mkdirSync(path.join(base, dir));
});

afterAll(async () => {
  await stopAllMounts();
  if (client) {
    await deleteBucket(client, bucket);
    client.destroy();
  }
  removeTemp(base);
});

describe('granary mount never gives a caller the ids of a file owner', () => {
  it(
    'mounts nosuid,nodev: a root-owned 0755 executable from the bucket runs as its caller (uid 65534)',
    withMountLog(
      () => mount,
      async () => {
        mount = await mountGranary({ source: `s3://${bucket}/${PREFIX}`, mountpoint: path.join(base, 'mnt'), env: s3MountEnv(testS3()), args: ['--file-mode', '0755', '--uid', '0'] });
        const entry = findMount(readMountInfo(), mount.mountpoint);
        expect(entry?.fsType).toBe('fuse.granary');
        expect(entry?.mountOptions).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
        const program = path.join(mount.mountpoint, 'euid');
        const stat = fs.statSync(program);
        expect({ mode: stat.mode & 0o7777, uid: stat.uid }).toEqual({ mode: 0o755, uid: 0 });
        const result = await runAsNobody(program);
        expect(result).toMatchObject({ code: 0, stdout: `euid=${NOBODY} egid=${NOBODY}\n` });
        await mount.stop();
      },
    ),
  );

  it.each([
    ['--file-mode', '4755', 'file-mode 4755 sets the setuid bit', 'use 0755'],
    ['--file-mode', '2755', 'file-mode 2755 sets the setgid bit', 'use 0755'],
    ['--file-mode', '06777', 'file-mode 06777 sets the setuid and setgid bits', 'use 0777'],
    ['--dir-mode', '1777', 'dir-mode 1777 sets the sticky bit', 'use 0777'],
    ['--dir-mode', '2775', 'dir-mode 2775 sets the setgid bit', 'use 0775'],
  ])('refuses %s %s with exit 1, naming the bits to drop, and mounts nothing', async (flag, mode, problem, fix) => {
    const mountpoint = path.join(base, 'refused');
    const result = await run(process.execPath, [builtCli(), 'mount', `s3://${bucket}/${PREFIX}`, mountpoint, flag, mode], {
      env: { PATH: process.env.PATH, ...s3MountEnv(testS3()) },
      // A refusal exits at once; a mount that was not refused serves until killed, so this bounds the old behaviour.
      timeoutMs: REFUSAL_TIMEOUT_MS,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(problem);
    expect(result.stderr).toContain(fix);
    expect(findMount(readMountInfo(), mountpoint)).toBeUndefined();
  });

  it('runs a file the filesystem shows as setuid root (mode forced past validation) as its caller: nosuid alone holds', async () => {
    const config = { ...parseMountConfig({ source: `s3://${bucket}/${PREFIX}`, mountpoint: path.join(base, 'forced'), uid: 0, fuse: { deviceReaders: 1 } }), fileMode: 0o4755 };
    let volume: MountedVolume | undefined;
    try {
      volume = await mountVolume(config, { logger: silentLogger(), env: s3MountEnv(testS3()) });
      const program = path.join(volume.mountpoint, 'euid');
      // Asynchronous only: this process serves the mount, so a synchronous call would wait on itself.
      const stat = await fs.promises.stat(program);
      // The bit is really there: without nosuid, exec would switch to the owner, root.
      expect({ mode: stat.mode & 0o7777, uid: stat.uid }).toEqual({ mode: 0o4755, uid: 0 });
      expect(await runAsNobody(program)).toMatchObject({ code: 0, stdout: `euid=${NOBODY} egid=${NOBODY}\n` });
      expect(findMount(readMountInfo(), volume.mountpoint)?.mountOptions).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    } finally {
      await volume?.unmount();
    }
    expect(findMount(readMountInfo(), config.mountpoint)).toBeUndefined();
  });
});
