import * as fs from 'node:fs/promises';
import { run, succeeds } from './exec';

/** A mountinfo field with its octal escapes (\040 for a space) decoded. */
const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** The mount points at or under dir, deepest last (mountinfo's order), octal escapes decoded. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return mountinfo.split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    .map(unescape)
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/** A line of mountinfo: where, what type, from what, with which options (per mount and per superblock). */
export interface MountEntry {
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
  readonly options: readonly string[];
}

/** The mounts at or under dir of one filesystem type (e.g. fuse.granary), in mountinfo's order. */
export async function mountsOfType(dir: string, fsType: string): Promise<MountEntry[]> {
  const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return mountinfo.split('\n').flatMap((line): MountEntry[] => {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (separator < 0 || fields[separator + 1] !== fsType) return [];
    const mountPoint = unescape(fields[4]!);
    if (mountPoint !== dir && !mountPoint.startsWith(`${dir}/`)) return [];
    const options = [...fields[5]!.split(','), ...(fields[separator + 3] ?? '').split(',')];
    return [{ mountPoint, fsType, source: unescape(fields[separator + 2]!), options }];
  });
}

/** Whether dir is a mount point whose propagation is shared (mountinfo's optional field shared:N). */
export async function isSharedMount(dir: string): Promise<boolean> {
  const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return mountinfo.split('\n').some((line) => {
    const fields = line.split(' ');
    return fields[4] === dir && fields.slice(6, fields.indexOf('-')).some((field) => field.startsWith('shared:'));
  });
}

/** Makes dir a shared mount (bind on itself, then rshared), so Bidirectional mounts propagate out of pods. */
export async function makeSharedMount(dir: string): Promise<void> {
  await run('mount', ['--bind', dir, dir]);
  await run('mount', ['--make-rshared', dir]);
}

/**
 * Unmounts everything at or under dir, deepest first; a mount that stays busy is detached (umount -l)
 * so nothing is left in the mount table. Repeats while mounts remain (a bind may stack several).
 */
export async function unmountAllUnder(dir: string): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const points = await mountsUnder(dir);
    if (points.length === 0) return;
    for (const point of [...points].sort((a, b) => b.length - a.length)) {
      if (!(await succeeds('umount', [point]))) await succeeds('umount', ['-l', point]);
    }
  }
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`mounts under ${dir} would not go: ${left.join(', ')}`);
}
