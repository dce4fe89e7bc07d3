import { BYTE_SIZE_PATTERN, formatByteSize, parseByteSize } from './size';

const Ki = 1024;
const Mi = 1024 ** 2;
const Gi = 1024 ** 3;
const Ti = 1024 ** 4;
const Pi = 1024 ** 5;

describe('parseByteSize', () => {
  it.each(Object.entries({
    // Plain bytes.
    '4194304': 4194304, '0': 0, ' 8 ': 8,
    // Kubernetes binary suffixes, and the same with B, in any case.
    '2Ki': 2 * Ki, '512Mi': 512 * Mi, '8Gi': 8 * Gi, '2Ti': 2 * Ti, '3Pi': 3 * Pi, '0Ei': 0,
    '512MiB': 512 * Mi, '4GiB': 4 * Gi, '4gi': 4 * Gi, '4GIB': 4 * Gi, '7PiB': 7 * Pi,
    // Kubernetes decimal suffixes (k is lower case there), the same with B, and m for mega, not milli.
    '64k': 64e3, '64K': 64e3, '500M': 500e6, '8G': 8e9, '3T': 3e12, '2P': 2e15, '0E': 0,
    '64kB': 64e3, '100GB': 100e9, '2PB': 2e15, '512m': 512e6, '12B': 12,
    // Decimals that make whole bytes, computed exactly.
    '1.5Gi': 1.5 * Gi, '1.5 GiB': 1.5 * Gi, '0.5Ki': 512, '4.35M': 4350000, '1.25T': 1.25e12, '2.0': 2, ' 8Gi ': 8 * Gi,
  }))('reads %j as %d bytes', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each(['', 'MiB', '-1GiB', '4 parsecs', '8 gigs', '1e9', '0x10', '8Gb/s', '8Zi', '8iB', '1.', '.5Gi', '8 G i', '8Gi B'])(
    'refuses %j and lists the accepted forms',
    (text) => {
      expect(() => parseByteSize(text)).toThrow(/is not a size: write bytes \(4194304\) or a number with a unit: binary Ki, Mi, Gi, Ti, Pi, Ei .* decimal k, M, G, T, P, E .* optionally followed by B/);
    },
  );

  it.each(['1.5', '0.1Ki', '1.1Gi', '0.0001k'])('refuses %j, a fraction of a byte', (text) => {
    expect(() => parseByteSize(text)).toThrow(/is not a whole number of bytes: write it in a smaller unit or with fewer decimals/);
  });

  it('takes sizes up to the largest safe integer and refuses one byte more', () => {
    expect(parseByteSize(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => parseByteSize(String(Number.MAX_SAFE_INTEGER + 1))).toThrow(/too large: at most 9007199254740991 bytes/);
    expect(() => parseByteSize('8Pi')).toThrow(/too large/);
    expect(() => parseByteSize('1Ei')).toThrow(/too large/);
    expect(() => parseByteSize('99999999TiB')).toThrow(/too large/);
  });

  it('shares its grammar as a pattern without flags, so a JSON schema and a Go template can use it', () => {
    const pattern = new RegExp(BYTE_SIZE_PATTERN);
    expect(pattern.test('1.5GiB')).toBe(true);
    expect(pattern.test('8 gigs')).toBe(false);
    expect(BYTE_SIZE_PATTERN).not.toMatch(/\\d|\(\?[a-z]/);
  });
});

describe('formatByteSize', () => {
  it.each([
    [512, '512 B'],
    [1020, '1020 B'],
    [100 * 1024 ** 2, '100 MiB'],
    [160 * 1024 ** 2, '160 MiB'],
    [512 * 1024 ** 2, '512 MiB'],
    [1.5 * 1024 ** 4, '1.5 TiB'],
    [4 * 1024 ** 3 + 1, '4 GiB'],
  ])('writes %d as %s', (bytes, text) => {
    expect(formatByteSize(bytes)).toBe(text);
  });
});
