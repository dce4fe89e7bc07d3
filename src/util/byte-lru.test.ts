import { ByteLru } from './byte-lru';

const bytes = (n: number) => Buffer.alloc(n);

describe('ByteLru', () => {
  it('never holds more bytes than its capacity, evicting the least recently used', () => {
    const lru = new ByteLru<Buffer>(100);
    for (let i = 0; i < 1000; i++) {
      lru.set(`k${i}`, bytes(1 + ((i * 37) % 60)));
      expect(lru.bytes).toBeLessThanOrEqual(100);
    }
    expect(lru.evictions).toBeGreaterThan(0);
  });

  it('keeps what was used recently', () => {
    const lru = new ByteLru<Buffer>(30);
    lru.set('a', bytes(10));
    lru.set('b', bytes(10));
    lru.set('c', bytes(10));
    lru.get('a');
    lru.set('d', bytes(10));
    expect(lru.has('a')).toBe(true);
    expect(lru.has('b')).toBe(false);
    expect(lru.bytes).toBe(30);
  });

  it('does not keep a value larger than its capacity, and replaces in place', () => {
    const lru = new ByteLru<Buffer>(10);
    lru.set('big', bytes(11));
    expect(lru.size).toBe(0);
    lru.set('a', bytes(4));
    lru.set('a', bytes(6));
    expect(lru.bytes).toBe(6);
    lru.delete('a');
    expect(lru.bytes).toBe(0);
  });
});

describe('ByteLru oldest-first access', () => {
  it('peeks and iterates least recently used first without touching recency', () => {
    const lru = new ByteLru<Buffer>(100);
    lru.set('a', bytes(1));
    lru.set('b', bytes(2));
    lru.set('c', bytes(3));
    lru.get('a');
    expect(lru.peekOldest()?.[0]).toBe('b');
    expect(lru.peek('b')?.length).toBe(2);
    expect([...lru.entriesOldestFirst()].map(([id]) => id)).toEqual(['b', 'c', 'a']);
    expect(lru.peekOldest()?.[0]).toBe('b');
    lru.delete('b');
    expect(lru.peekOldest()?.[0]).toBe('c');
    lru.clear();
    expect(lru.peekOldest()).toBeUndefined();
  });

  it('tells onEvict of what it drops to make room, oldest first', () => {
    const dropped: string[] = [];
    const lru = new ByteLru<Buffer>(10, (id) => dropped.push(id));
    lru.set('a', bytes(4));
    lru.set('b', bytes(4));
    lru.set('c', bytes(4));
    lru.set('d', bytes(8));
    expect(dropped).toEqual(['a', 'b', 'c']);
    expect(lru.evictions).toBe(3);
  });
});
