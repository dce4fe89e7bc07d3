import * as path from 'node:path';

/**
 * What a path is to the mount table: a live mount point, not a mount point, or a mount point
 * whose filesystem no longer answers (a FUSE mount whose process died: ENOTCONN, EIO, ESTALE).
 */
export type MountState = 'mounted' | 'not-mounted' | 'corrupt';

/** One line of /proc/self/mountinfo, with the fields the node service compares. */
export interface MountEntry {
  /** Unique id of the mount. */
  mountId: number;
  /** `major:minor` of the filesystem: a bind mount shares it with its source. */
  device: string;
  /** The directory of the filesystem that is mounted here ('/' unless a subtree was bound). */
  root: string;
  /** Where it is mounted (octal escapes such as `\040` decoded). */
  mountPoint: string;
  /** Per-mount options (`ro` or `rw` first): read-only-ness of a bind mount lives here. */
  mountOptions: string[];
  /** Filesystem type, e.g. `fuse.granary` or `tmpfs`. */
  fsType: string;
  /** Mount source as the filesystem reported it. */
  source: string;
  /** Per-superblock options. */
  superOptions: string[];
}

/**
 * The mount operations the node service needs. Small on purpose: the real implementation shells out
 * to mount(8)/umount(8) and reads /proc/self/mountinfo; the fake keeps a table in memory.
 */
export interface Mounter {
  /** Mounts `source` of type `fstype` at `target` with `options` (as for `mount -o`). */
  mount(source: string, target: string, fstype: string, options: string[]): Promise<void>;
  /** Bind-mounts `source` at `target`, read-only when asked (and verified read-only afterwards). */
  bindMount(source: string, target: string, readOnly: boolean): Promise<void>;
  /** Unmounts whatever is mounted at `target` (live or dead); a path that is not a mount point is left alone. */
  unmount(target: string): Promise<void>;
  /** Tells whether `target` is a live mount point, a dead one, or not a mount point (including a missing path). */
  isMountPoint(target: string): Promise<MountState>;
  /** Every mount visible to this process, in mount order. */
  listMounts(): Promise<MountEntry[]>;
}

/** The topmost mount at `target` (mounts can be stacked on one path), or undefined. */
export function findMount(mounts: readonly MountEntry[], target: string): MountEntry | undefined {
  const wanted = path.resolve(target);
  let found: MountEntry | undefined;
  for (const entry of mounts) {
    if (entry.mountPoint === wanted) found = entry;
  }
  return found;
}

/** True when the mount is read-only for its users (per-mount `ro`, or a read-only superblock). */
export function isReadOnlyMount(entry: MountEntry): boolean {
  return entry.mountOptions.includes('ro') || entry.superOptions.includes('ro');
}
