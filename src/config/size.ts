// Byte sizes as operators write them on flags and in Helm values: 4194304, 512MiB, 4GiB, 1.5TB.

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1000,
  kb: 1000,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  t: 1000 ** 4,
  tb: 1000 ** 4,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * Parses a byte size: plain bytes, or a number with a decimal (kB, MB, GB, TB, or Kubernetes' k, M, G, T) or
 * binary (KiB, MiB, GiB, TiB, or Ki, Mi, Gi, Ti) unit, case-insensitive. Throws an Error that says what
 * is accepted when `value` is anything else.
 */
export function parseByteSize(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = match ? UNITS[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new Error(`"${value}" is not a size: write bytes (4194304) or a number with a unit (512MiB, 4GiB, 100GB, 2Ti)`);
  }
  const bytes = Math.floor(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new Error(`"${value}" is too large`);
  return bytes;
}

/** `bytes` in the largest binary unit that keeps it readable: 512 MiB, 4 GiB, 1.5 TiB. */
export function formatByteSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const fixed = unit === 0 ? String(value) : value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0);
  const text = fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
  return `${text} ${units[unit]}`;
}
