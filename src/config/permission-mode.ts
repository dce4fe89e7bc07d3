// The modes every granary file and directory shows (`granary mount --file-mode/--dir-mode`, the
// StorageClass mount options file-mode and dir-mode): permission bits only. One mode covers every
// object in the bucket, so a setuid bit would make any uploaded executable run as its owner (root by
// default); setgid and sticky are refused with it, as nothing in an object store asks for them.

/** The mode options, named as on the command line and in StorageClass mountOptions. */
export type ModeOption = 'file-mode' | 'dir-mode';

/** The bits a mode may set: read, write and execute for owner, group and others. */
export const PERMISSION_BITS = 0o777;

/** The bits above PERMISSION_BITS, with their names for messages. */
const SPECIAL_BITS: ReadonlyArray<readonly [bit: number, name: string]> = [
  [0o4000, 'setuid'],
  [0o2000, 'setgid'],
  [0o1000, 'sticky'],
];

/** How a mode is written: up to four octal digits with an optional leading 0 (644, 0644, 04755). */
const MODE_TEXT = /^0?[0-7]{1,4}$/;

/** True when `text` is written as a mode: up to four octal digits with an optional leading 0. */
export function isModeText(text: string): boolean {
  return MODE_TEXT.test(text);
}

/** A mode as four octal digits (0755). */
export function formatMode(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

/**
 * Why `mode` is refused for `option`, naming the special bits it sets and the mode to use instead
 * ("file-mode 4755 sets the setuid bit; ...: use 0755"), or undefined when it sets permission bits only.
 * `text` is the mode as the user wrote it.
 */
export function specialBitsProblem(option: ModeOption, mode: number, text = formatMode(mode)): string | undefined {
  const names = SPECIAL_BITS.filter(([bit]) => (mode & bit) !== 0).map(([, name]) => name);
  if (names.length === 0) return undefined;
  const bits = names.length === 1 ? `the ${names[0]} bit` : `the ${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} bits`;
  const things = option === 'dir-mode' ? 'directories' : 'files';
  return `${option} ${text} sets ${bits}; granary never mounts setuid, setgid or sticky ${things}: use ${formatMode(mode & PERMISSION_BITS)}`;
}

/** Parses a mode option as written; `problem` says why it is refused (not octal, or special bits set). */
export function parseMode(option: ModeOption, text: string): { mode: number } | { problem: string } {
  if (!isModeText(text)) return { problem: `${option} ${JSON.stringify(text)} is not octal permission bits such as ${option === 'dir-mode' ? '0755' : '0644'}` };
  const mode = Number.parseInt(text, 8);
  const problem = specialBitsProblem(option, mode, text);
  return problem ? { problem } : { mode };
}
