import type { ObjectInfo } from '../../objectstore/store';
import { VersionCache } from './version-cache';

const version = (etag: string): ObjectInfo => ({ key: 'model.bin', size: 10, etag, lastModified: new Date(0) });

/** A HEAD that answers when the test says, counting what was asked. */
class Origin {
  readonly asked: string[] = [];
  readonly signals: AbortSignal[] = [];
  private readonly waiting: Array<{ resolve: (object: ObjectInfo) => void; reject: (error: Error) => void }> = [];

  readonly head = (bucket: string, key: string, signal: AbortSignal): Promise<ObjectInfo> => {
    this.asked.push(`${bucket}/${key}`);
    this.signals.push(signal);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  };

  answer(object: ObjectInfo, index = 0): void {
    this.waiting.splice(index, 1)[0]!.resolve(object);
  }

  fail(error: Error): void {
    this.waiting.shift()!.reject(error);
  }
}

function setUp(ttlMs = 1000, maxEntries = 100) {
  const origin = new Origin();
  let now = 0;
  const cache = new VersionCache(origin.head, { ttlMs, maxEntries, now: () => now });
  return { origin, cache, advance: (ms: number) => (now += ms) };
}

const signal = () => new AbortController().signal;

describe('VersionCache', () => {
  it('answers the requests within ttlMs of a HEAD from it, and asks the origin again after', async () => {
    const { origin, cache, advance } = setUp();
    const first = cache.lookup('bkt', 'model.bin', signal());
    origin.answer(version('a'));
    await expect(first).resolves.toEqual({ object: version('a'), fromOrigin: true });
    advance(999);
    await expect(cache.lookup('bkt', 'model.bin', signal())).resolves.toEqual({ object: version('a'), fromOrigin: false });
    expect(origin.asked).toHaveLength(1);
    advance(1);
    const later = cache.lookup('bkt', 'model.bin', signal());
    expect(origin.asked).toHaveLength(2);
    origin.answer(version('b'));
    await expect(later).resolves.toEqual({ object: version('b'), fromOrigin: true });
  });

  it('counts the lifetime from when the HEAD was sent, not from when it answered', async () => {
    const { origin, cache, advance } = setUp();
    const first = cache.lookup('bkt', 'model.bin', signal());
    advance(800);
    origin.answer(version('a'));
    await first;
    advance(200);
    const next = cache.lookup('bkt', 'model.bin', signal());
    expect(origin.asked).toHaveLength(2);
    origin.answer(version('a'));
    await next;
  });

  it('shares one HEAD among the requests that arrive while it is in flight', async () => {
    const { origin, cache } = setUp();
    const lookups = [cache.lookup('bkt', 'model.bin', signal()), cache.lookup('bkt', 'model.bin', signal()), cache.lookup('bkt', 'model.bin', signal())];
    expect(origin.asked).toEqual(['bkt/model.bin']);
    origin.answer(version('a'));
    expect((await Promise.all(lookups)).map((lookup) => lookup.fromOrigin)).toEqual([true, false, false]);
  });

  it('keeps objects apart by bucket and key', async () => {
    const { origin, cache } = setUp();
    const lookups = [cache.lookup('bkt', 'a/b', signal()), cache.lookup('bkt-a', 'b', signal()), cache.lookup('bkt', 'a/c', signal())];
    expect(origin.asked).toEqual(['bkt/a/b', 'bkt-a/b', 'bkt/a/c']);
    for (const etag of ['1', '2', '3']) origin.answer(version(etag));
    expect((await Promise.all(lookups)).map((lookup) => lookup.object.etag)).toEqual(['1', '2', '3']);
  });

  it('asks the origin for a fresh lookup though a version is kept, and keeps the fresh answer', async () => {
    const { origin, cache } = setUp();
    const first = cache.lookup('bkt', 'model.bin', signal());
    origin.answer(version('a'));
    await first;
    const fresh = cache.lookup('bkt', 'model.bin', signal(), true);
    expect(origin.asked).toHaveLength(2);
    origin.answer(version('b'));
    await expect(fresh).resolves.toEqual({ object: version('b'), fromOrigin: true });
    await expect(cache.lookup('bkt', 'model.bin', signal())).resolves.toEqual({ object: version('b'), fromOrigin: false });
  });

  it('does not let an older HEAD that answers late replace a newer answer', async () => {
    const { origin, cache, advance } = setUp();
    const old = cache.lookup('bkt', 'model.bin', signal());
    advance(10);
    const fresh = cache.lookup('bkt', 'model.bin', signal(), true);
    origin.answer(version('new'), 1);
    await fresh;
    origin.answer(version('old'));
    await expect(old).resolves.toMatchObject({ object: version('old') });
    await expect(cache.lookup('bkt', 'model.bin', signal())).resolves.toEqual({ object: version('new'), fromOrigin: false });
  });

  it('keeps no failure: the next request asks again', async () => {
    const { origin, cache } = setUp();
    const failed = cache.lookup('bkt', 'gone.bin', signal());
    origin.fail(new Error('NotFound'));
    await expect(failed).rejects.toThrow('NotFound');
    const again = cache.lookup('bkt', 'gone.bin', signal());
    expect(origin.asked).toHaveLength(2);
    origin.answer(version('a'));
    await expect(again).resolves.toMatchObject({ fromOrigin: true });
  });

  it("ends one caller's wait when its signal aborts, while the shared HEAD goes on for the others", async () => {
    const { origin, cache } = setUp();
    const leaving = new AbortController();
    const gone = cache.lookup('bkt', 'model.bin', leaving.signal);
    const staying = cache.lookup('bkt', 'model.bin', signal());
    leaving.abort(new Error('the client went away'));
    await expect(gone).rejects.toThrow('the client went away');
    expect(origin.signals[0]!.aborted).toBe(false);
    origin.answer(version('a'));
    await expect(staying).resolves.toMatchObject({ object: version('a') });
  });

  it('with ttlMs 0 sends a HEAD for every request, with the request\'s own signal', async () => {
    const { origin, cache } = setUp(0);
    const own = new AbortController();
    const lookups = [cache.lookup('bkt', 'model.bin', own.signal), cache.lookup('bkt', 'model.bin', signal())];
    expect(origin.asked).toHaveLength(2);
    expect(origin.signals[0]).toBe(own.signal);
    origin.answer(version('a'));
    origin.answer(version('a'));
    expect((await Promise.all(lookups)).map((lookup) => lookup.fromOrigin)).toEqual([true, true]);
    expect(cache.size).toBe(0);
  });

  it('keeps at most maxEntries versions, dropping the oldest, and drops expired ones as it adds', async () => {
    const { origin, cache, advance } = setUp(1000, 2);
    for (const key of ['a', 'b', 'c']) {
      const lookup = cache.lookup('bkt', key, signal());
      origin.answer(version(key));
      await lookup;
    }
    expect(cache.size).toBe(2);
    const dropped = cache.lookup('bkt', 'a', signal());
    expect(origin.asked).toEqual(['bkt/a', 'bkt/b', 'bkt/c', 'bkt/a']);
    origin.answer(version('a'));
    await dropped;
    advance(1000);
    const last = cache.lookup('bkt', 'd', signal());
    origin.answer(version('d'));
    await last;
    expect(cache.size).toBe(1);
  });
});
