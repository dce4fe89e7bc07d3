// Byte sizes: parsing the flags (`1GiB`, `64KiB`) and printing them back.

/** Bytes in one KiB. */
export const KIB = 1024;

/** Bytes in one MiB. */
export const MIB = 1024 * KIB;

/** Bytes in one GiB. */
export const GIB = 1024 * MIB;

const SUFFIXES: Record<string, number> = { '': 1, b: 1, kib: KIB, k: KIB, mib: MIB, m: MIB, gib: GIB, g: GIB };

/** Parses `1GiB`, `256MiB`, `64KiB`, `4096` (binary units, case-insensitive) into bytes; throws on anything else. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const factor = match ? SUFFIXES[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || factor === undefined) throw new Error(`"${text}" is not a size: write it like 1GiB, 256MiB, 64KiB or a number of bytes`);
  const bytes = Math.round(Number(match[1]) * factor);
  if (bytes <= 0) throw new Error(`"${text}" is not a positive size`);
  return bytes;
}

/** Prints bytes with the largest binary unit that keeps the number whole where possible (`1 GiB`, `64 KiB`, `1.5 MiB`). */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GiB', GIB], ['MiB', MIB], ['KiB', KIB]] as const) {
    if (bytes >= factor) {
      const value = bytes / factor;
      return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} B`;
}
