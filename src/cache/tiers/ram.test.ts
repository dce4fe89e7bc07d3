import { RamTier } from './ram';

const block = (n: number, fill = 1) => Buffer.alloc(n, fill);

describe('RamTier', () => {
  it('serves what was put and counts hits and misses', async () => {
    const tier = new RamTier(1024);
    await tier.put('a', block(100, 7));
    expect(await tier.get('a')).toEqual(block(100, 7));
    expect(await tier.get('b')).toBeUndefined();
    expect(tier.stats).toMatchObject({ hits: 1, misses: 1 });
    expect(tier.has('a')).toBe(true);
    expect(tier.blockCount).toBe(1);
    expect(tier.usedBytes).toBe(100);
    expect(tier.name).toBe('ram');
  });

  it('never holds more than its cap, evicting the least recently used', async () => {
    const tier = new RamTier(1000);
    for (let i = 0; i < 500; i++) {
      await tier.put(`b${i}`, block(1 + ((i * 53) % 300)));
      expect(tier.usedBytes).toBeLessThanOrEqual(1000);
    }
    expect(tier.stats.evictions).toBeGreaterThan(0);
  });

  it('keeps a block that was read recently', async () => {
    const tier = new RamTier(300);
    await tier.put('a', block(100));
    await tier.put('b', block(100));
    await tier.put('c', block(100));
    await tier.get('a');
    await tier.put('d', block(100));
    expect(tier.has('a')).toBe(true);
    expect(tier.has('b')).toBe(false);
    expect(tier.stats.evictions).toBe(1);
  });

  it('rejects a block larger than its cap without evicting anything', async () => {
    const tier = new RamTier(100);
    await tier.put('a', block(50));
    await tier.put('huge', block(101));
    expect(tier.has('huge')).toBe(false);
    expect(tier.has('a')).toBe(true);
    expect(tier.stats).toMatchObject({ rejections: 1, evictions: 0 });
  });

  it('replaces a block in place and drops one on delete', async () => {
    const tier = new RamTier(100);
    await tier.put('a', block(40, 1));
    await tier.put('a', block(60, 2));
    expect(tier.usedBytes).toBe(60);
    expect(await tier.get('a')).toEqual(block(60, 2));
    await tier.delete('a');
    await tier.delete('absent');
    expect(tier.usedBytes).toBe(0);
    expect(tier.blockCount).toBe(0);
  });

  it('refuses a negative capacity', () => {
    expect(() => new RamTier(-1)).toThrow('zero or more');
  });
});
