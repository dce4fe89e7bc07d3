import { connectionIdOf } from './device';

describe('connectionIdOf', () => {
  it('turns a mount device into the kernel connection id (MKDEV)', () => {
    expect(connectionIdOf('0:39')).toBe(39);
    expect(connectionIdOf('1:2')).toBe(2 ** 20 + 2);
    expect(connectionIdOf('junk')).toBeUndefined();
  });
});
