import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseMountInfo } from '../../system/mountinfo';
import { BIND_MOUNT_FLAGS, findMount, isReadOnlyMount, type Mounter, type MountEntry, type MountState } from './mounter';

/** How long one mount(8)/umount(8) call may take before it is killed (a hung FUSE server can stall umount). */
export const MOUNT_COMMAND_TIMEOUT_MS = 60_000;

/** How many mounts stacked on one path unmount() peels off before giving up. */
export const MAX_STACKED_MOUNTS = 8;

/** errno codes a dead or broken mount answers with: the FUSE server is gone (ENOTCONN), or the filesystem fails (EIO, ESTALE). */
const DEAD_MOUNT_CODES = new Set(['ENOTCONN', 'ECONNABORTED', 'EIO', 'ESTALE']);

/** umount(8) failures that a lazy unmount (`umount -l`) can still resolve. */
const LAZY_UNMOUNT_WORTHY = /busy|not connected|input\/output error|stale file handle/i;

/** A failed mount(8)/umount(8) call, with what the command printed. */
export class MountCommandError extends Error {
  override readonly name = 'MountCommandError';

  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    super(`${command} ${args.join(' ')} failed: ${stderr.trim() || String((options?.cause as Error | undefined)?.message ?? 'unknown error')}`, options);
  }
}

/** Runs a command and resolves with its output; rejects with MountCommandError. */
export type RunCommand = (command: string, args: readonly string[]) => Promise<{ stdout: string; stderr: string }>;

/** The side effects LinuxMounter performs, exposed for testing. */
export interface LinuxMounterEffects {
  /** Runs mount(8)/umount(8). */
  run: RunCommand;
  /** Reads /proc/self/mountinfo. */
  readMountInfo: () => Promise<string>;
  /** statfs(2) of a path (to tell a live mount from a dead one). */
  statfs: (target: string) => Promise<unknown>;
}

/** Runs a command with execFile and the mount timeout. */
export const runCommand: RunCommand = (command, args) =>
  new Promise((resolve, reject) => {
    execFile(command, [...args], { timeout: MOUNT_COMMAND_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new MountCommandError(command, args, stderr, { cause: error }));
      else resolve({ stdout, stderr });
    });
  });

const defaultEffects: LinuxMounterEffects = {
  run: runCommand,
  readMountInfo: () => fs.promises.readFile('/proc/self/mountinfo', 'utf8'),
  statfs: (target) => fs.promises.statfs(target),
};

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * The real mounter: mount(8) and umount(8) for changes, /proc/self/mountinfo and statfs(2) for questions.
 * Paths are compared after path.resolve, not realpath (realpath of a dead FUSE mount fails); kubelet's paths are canonical.
 */
export class LinuxMounter implements Mounter {
  private readonly effects: LinuxMounterEffects;

  constructor(effects: Partial<LinuxMounterEffects> = {}) {
    this.effects = { ...defaultEffects, ...effects };
  }

  /** Mounts with `mount -t FSTYPE -o OPTIONS SOURCE TARGET`. */
  async mount(source: string, target: string, fstype: string, options: string[]): Promise<void> {
    const args = ['-t', fstype, ...(options.length > 0 ? ['-o', options.join(',')] : []), source, target];
    await this.effects.run('mount', args);
  }

  /**
   * Bind-mounts in two steps, because the kernel ignores per-mount flags on the bind itself (MS_BIND with
   * MS_RDONLY or MS_NOSUID makes a plain bind; only a later MS_REMOUNT|MS_BIND applies them):
   * 1. `mount --bind SOURCE TARGET`;
   * 2. `mount -o remount,bind,nosuid,nodev[,ro] TARGET`: whatever the source's flags, a pod never runs a
   *    setuid program or opens a device file from a volume (BIND_MOUNT_FLAGS);
   * 3. check mountinfo shows those flags. If 2 or 3 fails, the bind is undone, so no bind without them is left behind.
   */
  async bindMount(source: string, target: string, readOnly: boolean): Promise<void> {
    await this.effects.run('mount', ['--bind', source, target]);
    const flags = [...BIND_MOUNT_FLAGS, ...(readOnly ? ['ro'] : [])];
    try {
      await this.effects.run('mount', ['-o', ['remount', 'bind', ...flags].join(','), target]);
      const entry = findMount(await this.listMounts(), target);
      const missing = flags.filter((flag) => !(flag === 'ro' ? entry !== undefined && isReadOnlyMount(entry) : entry?.mountOptions.includes(flag)));
      if (missing.length > 0) throw new Error(`the bind mount at ${target} lacks ${missing.join(',')} after remount,bind,${flags.join(',')}`);
    } catch (error) {
      await this.unmount(target).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Unmounts every mount stacked at `target`. A busy or dead mount that umount refuses is detached
   * with `umount -l`: the path is free at once, and the kernel drops the mount when its last user lets go.
   */
  async unmount(target: string): Promise<void> {
    for (let peeled = 0; peeled < MAX_STACKED_MOUNTS; peeled++) {
      const state = await this.isMountPoint(target);
      if (state === 'not-mounted') return;
      try {
        await this.effects.run('umount', [target]);
      } catch (error) {
        const stderr = error instanceof MountCommandError ? error.stderr : '';
        if (state !== 'corrupt' && !LAZY_UNMOUNT_WORTHY.test(stderr)) throw error;
        await this.effects.run('umount', ['-l', target]);
      }
    }
    throw new Error(`${target} is still a mount point after ${MAX_STACKED_MOUNTS} unmounts`);
  }

  /**
   * Live when listed in mountinfo and its filesystem answers; corrupt when it fails the way a dead FUSE mount does.
   * The probe is statfs, not stat: the kernel answers stat of a FUSE root from its attribute cache for a while
   * after the FUSE process died, but always sends STATFS to the process, so only statfs sees ENOTCONN at once.
   */
  async isMountPoint(target: string): Promise<MountState> {
    const resolved = path.resolve(target);
    let code: string | undefined;
    try {
      await this.effects.statfs(resolved);
    } catch (error) {
      code = errorCode(error) ?? 'UNKNOWN';
    }
    // A path under a dead FUSE mount answers ENOTCONN too, but the node service only asks about the mount points it made.
    if (code !== undefined && DEAD_MOUNT_CODES.has(code)) return 'corrupt';
    if (code === 'ENOENT') return 'not-mounted';
    // Any other answer (ENOSYS from a filesystem without statfs, say) came from a live filesystem: mountinfo decides.
    return findMount(await this.listMounts(), resolved) ? 'mounted' : 'not-mounted';
  }

  /** Every mount of this process's mount namespace. */
  async listMounts(): Promise<MountEntry[]> {
    return parseMountInfo(await this.effects.readMountInfo());
  }
}
