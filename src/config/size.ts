// Byte sizes as operators write them on flags and in Helm values: Kubernetes quantities (8Gi, 500G,
// 1.5Ti, 4194304) and the same with a trailing B (8GiB, 500GB). One grammar for the CLI and the
// chart: values.schema.json ($defs.size) and templates/_helpers.tpl (granary.bytes) carry the same
// pattern, and e2e/chart/sizes.test.ts fails when they drift apart.
//
// Suffix letters are case-insensitive, as the flags always took them, so `m` is mega and not
// Kubernetes' milli: a size has no thousandths of a byte, and `512m` means 512 MB to everyone
// who writes it for memory outside Kubernetes.

/**
 * The grammar of a size: digits, optional decimals, an optional suffix (k, M, G, T, P or E, each with
 * an optional `i` for the binary 1024-based unit, then an optional B; or B alone). Shared with the chart.
 */
export const BYTE_SIZE_PATTERN = '^\\s*([0-9]+)(?:\\.([0-9]+))?\\s*([kKmMgGtTpPeE][iI]?[bB]?|[bB])?\\s*$';

/** The accepted forms, for error messages. */
const FORMS =
  'write bytes (4194304) or a number with a unit: binary Ki, Mi, Gi, Ti, Pi, Ei (512Mi, 8Gi, 1.5Ti) or ' +
  'decimal k, M, G, T, P, E (500G), each optionally followed by B (8GiB, 100GB)';

const SIZE = new RegExp(BYTE_SIZE_PATTERN);
const PREFIXES = 'kmgtpe';

/** Bytes in one `unit` (the suffix without its B, lower case): 1 for none, 1000^n or 1024^n for the nth prefix. */
function unitBytes(unit: string): bigint {
  if (unit === '') return 1n;
  const power = BigInt(PREFIXES.indexOf(unit[0]!) + 1);
  return (unit.endsWith('i') ? 1024n : 1000n) ** power;
}

/**
 * Parses a byte size: plain bytes or a number with a Kubernetes suffix (Ki, Mi, Gi, Ti, Pi, Ei or k, M,
 * G, T, P, E), optionally followed by B; decimals only where they make whole bytes (1.5Gi, not 0.1Ki).
 * Throws an Error that says what is accepted when `value` is anything else.
 */
export function parseByteSize(value: string): number {
  const match = SIZE.exec(value);
  if (!match) throw new Error(`"${value}" is not a size: ${FORMS}`);
  const [, whole = '', fraction = '', suffix = ''] = match;
  // Exact arithmetic: 4.35M is 4350000 bytes, which floating point would make 4349999.999...
  const scaled = BigInt(whole + fraction) * unitBytes(suffix.toLowerCase().replace(/b$/, ''));
  const divisor = 10n ** BigInt(fraction.length);
  if (scaled % divisor !== 0n) {
    throw new Error(`"${value}" is not a whole number of bytes: write it in a smaller unit or with fewer decimals (${FORMS})`);
  }
  const bytes = scaled / divisor;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`"${value}" is too large: at most ${Number.MAX_SAFE_INTEGER} bytes, 1 byte short of 8Pi`);
  return Number(bytes);
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
