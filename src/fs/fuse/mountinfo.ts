// Reading /proc/self/mountinfo: how granary (and the CSI node plugin) tell whether a path is a mount.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One line of /proc/self/mountinfo, the fields granary uses. */
export interface MountInfoEntry {
  mountId: number;
  /** The st_dev of the mount as "major:minor". */
  device: string;
  /** Where it is mounted (octal escapes such as \040 decoded). */
  mountpoint: string;
  /** Filesystem type, e.g. "fuse.granary". */
  type: string;
  /** The source column (fsname). */
  source: string;
  /** Per-mount options, e.g. ["ro", "nosuid"]. */
  options: string[];
}

/** Where the kernel lists this process's mounts. */
export const MOUNTINFO_PATH = '/proc/self/mountinfo';

function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Parses mountinfo text (see proc(5)): "id parent major:minor root mountpoint options [optional...] - type source superoptions". */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (fields.length < 10 || separator < 6) continue;
    entries.push({
      mountId: Number(fields[0]),
      device: fields[2] ?? '',
      mountpoint: unescapeOctal(fields[4] ?? ''),
      options: (fields[5] ?? '').split(','),
      type: fields[separator + 1] ?? '',
      source: unescapeOctal(fields[separator + 2] ?? ''),
    });
  }
  return entries;
}

/** The mounts of this process's mount namespace. */
export function readMountInfo(file = MOUNTINFO_PATH): MountInfoEntry[] {
  return parseMountInfo(fs.readFileSync(file, 'utf8'));
}

/** The topmost mount at exactly `mountpoint` (an absolute path), or undefined when there is none. */
export function findMount(mountpoint: string, entries: MountInfoEntry[] = readMountInfo()): MountInfoEntry | undefined {
  const wanted = path.resolve(mountpoint);
  // Later lines are mounted on top of earlier ones at the same path.
  return entries.filter((entry) => entry.mountpoint === wanted).pop();
}
