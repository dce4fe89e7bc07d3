import type { MountEntry } from '../../system/mountinfo';

export { findMount, isReadOnlyMount, type MountEntry } from '../../system/mountinfo';

/**
 * What a path is to the mount table: a live mount point, not a mount point, or a mount point
 * whose filesystem no longer answers (a FUSE mount whose process died: ENOTCONN, EIO, ESTALE).
 */
export type MountState = 'mounted' | 'not-mounted' | 'corrupt';

/** Per-mount flags every bind mount into a pod gets (mount(8) names): no setuid programs, no device files. */
export const BIND_MOUNT_FLAGS = ['nosuid', 'nodev'] as const;

/**
 * The mount operations the node service needs. Small on purpose: the real implementation shells out
 * to mount(8)/umount(8) and reads /proc/self/mountinfo; the fake keeps a table in memory.
 */
export interface Mounter {
  /** Mounts `source` of type `fstype` at `target` with `options` (as for `mount -o`). */
  mount(source: string, target: string, fstype: string, options: string[]): Promise<void>;
  /** Bind-mounts `source` at `target` with BIND_MOUNT_FLAGS, read-only when asked (and verified afterwards). */
  bindMount(source: string, target: string, readOnly: boolean): Promise<void>;
  /** Unmounts whatever is mounted at `target` (live or dead); a path that is not a mount point is left alone. */
  unmount(target: string): Promise<void>;
  /** Tells whether `target` is a live mount point, a dead one, or not a mount point (including a missing path). */
  isMountPoint(target: string): Promise<MountState>;
  /** Every mount visible to this process, in mount order. */
  listMounts(): Promise<MountEntry[]>;
}
