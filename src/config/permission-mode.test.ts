import { formatMode, parseMode, specialBitsProblem } from './permission-mode';

describe('permission modes', () => {
  it.each([
    ['file-mode', 0o4755, '4755', 'file-mode 4755 sets the setuid bit; granary never mounts setuid, setgid or sticky files: use 0755'],
    ['file-mode', 0o2755, '2755', 'file-mode 2755 sets the setgid bit; granary never mounts setuid, setgid or sticky files: use 0755'],
    ['file-mode', 0o6777, '06777', 'file-mode 06777 sets the setuid and setgid bits; granary never mounts setuid, setgid or sticky files: use 0777'],
    ['dir-mode', 0o1777, '1777', 'dir-mode 1777 sets the sticky bit; granary never mounts setuid, setgid or sticky directories: use 0777'],
    ['dir-mode', 0o7750, '7750', 'dir-mode 7750 sets the setuid, setgid and sticky bits; granary never mounts setuid, setgid or sticky directories: use 0750'],
  ] as const)('refuses %s %s, naming the bits to drop and the mode to use', (option, mode, text, message) => {
    expect(specialBitsProblem(option, mode, text)).toBe(message);
    expect(parseMode(option, text)).toEqual({ problem: message });
  });

  it.each(['0', '644', '0644', '0755', '777', '0777'])('accepts the permission bits %s', (text) => {
    expect(parseMode('file-mode', text)).toEqual({ mode: Number.parseInt(text, 8) });
    expect(specialBitsProblem('dir-mode', Number.parseInt(text, 8))).toBeUndefined();
  });

  it.each(['rw', '0999', '12345', '-644', '0x1ed', ''])('refuses %j as not octal', (text) => {
    expect(parseMode('dir-mode', text)).toEqual({ problem: `dir-mode ${JSON.stringify(text)} is not octal permission bits such as 0755` });
  });

  it('writes a mode as four octal digits, and a number without text that way in messages', () => {
    expect(formatMode(0o644)).toBe('0644');
    expect(specialBitsProblem('file-mode', 0o4755)).toMatch(/^file-mode 4755 sets the setuid bit/);
  });
});
