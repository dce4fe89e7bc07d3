// /proc/self/mountinfo: how granary tells whether a path is a mount, of what, and read-only or not.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where the kernel lists this process's mounts. */
export const MOUNTINFO_PATH = '/proc/self/mountinfo';

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

/** Decodes the octal escapes the kernel writes in mountinfo paths (`\040` space, `\011` tab, `\012` newline, `\134` backslash). */
export function unescapeMountInfoField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Parses /proc/self/mountinfo (proc(5)): `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`.
 * Lines that do not fit are skipped rather than failing every mount check.
 */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    const separator = fields.indexOf('-', 6);
    if (fields.length < 10 || separator < 0) continue;
    const [mountId, , device, root, mountPoint, mountOptions] = fields;
    const [fsType, source, superOptions] = fields.slice(separator + 1);
    if (!mountId || !device || !root || !mountPoint || !mountOptions || !fsType || source === undefined) continue;
    entries.push({
      mountId: Number(mountId),
      device,
      root: unescapeMountInfoField(root),
      mountPoint: unescapeMountInfoField(mountPoint),
      mountOptions: mountOptions.split(','),
      fsType: unescapeMountInfoField(fsType),
      source: unescapeMountInfoField(source),
      superOptions: (superOptions ?? '').split(','),
    });
  }
  return entries;
}

/** The mounts of this process's mount namespace, in mount order (read synchronously: the file is small and in memory). */
export function readMountInfo(file = MOUNTINFO_PATH): MountEntry[] {
  return parseMountInfo(fs.readFileSync(file, 'utf8'));
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
