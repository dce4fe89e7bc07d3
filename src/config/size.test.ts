import { formatByteSize, parseByteSize } from './size';

describe('parseByteSize', () => {
  it.each([
    ['4194304', 4194304],
    ['512MiB', 512 * 1024 ** 2],
    ['4GiB', 4 * 1024 ** 3],
    ['4gi', 4 * 1024 ** 3],
    ['100GB', 100e9],
    ['2Ti', 2 * 1024 ** 4],
    ['1.5 GiB', 1.5 * 1024 ** 3],
    ['0', 0],
  ])('reads %s as %d bytes', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each(['', 'MiB', '-1GiB', '4 parsecs', '1e9', '0x10'])('refuses %j and says what it takes', (text) => {
    expect(() => parseByteSize(text)).toThrow(/write bytes .* or a number with a unit/);
  });

  it('refuses sizes beyond a safe integer', () => {
    expect(() => parseByteSize('99999999TiB')).toThrow(/too large/);
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
