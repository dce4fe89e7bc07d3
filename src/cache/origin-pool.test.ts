import { OriginPool } from './origin-pool';

/** A client that knows whether it was closed, and refuses work once it is (as a destroyed SDK client would fail). */
class FakeClient {
  closed = false;
  constructor(readonly bucket: string) {}
  close(): void {
    if (this.closed) throw new Error(`${this.bucket} closed twice`);
    this.closed = true;
  }
  async read(): Promise<string> {
    if (this.closed) throw new Error(`${this.bucket} was closed under its user`);
    return this.bucket;
  }
}

/** A promise and the function that resolves it: the gate a test opens when it chooses. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

function pool(capacity: number) {
  const opened: FakeClient[] = [];
  const closed: string[] = [];
  const origins = new OriginPool<FakeClient>({
    capacity,
    open: (bucket) => {
      const client = new FakeClient(bucket);
      opened.push(client);
      return client;
    },
    onClose: (bucket) => closed.push(bucket),
  });
  return { origins, opened, closed };
}

describe('OriginPool', () => {
  it('opens one client per bucket and reuses it', async () => {
    const { origins, opened } = pool(4);
    expect(await origins.use('a', (client) => client.read())).toBe('a');
    expect(await origins.use('a', (client) => client.read())).toBe('a');
    expect(await origins.use('b', (client) => client.read())).toBe('b');
    expect(opened.map((client) => client.bucket)).toEqual(['a', 'b']);
    expect(origins.size).toBe(2);
  });

  it('closes the least recently used client to make room, and never holds more than its capacity', async () => {
    const { origins, opened, closed } = pool(2);
    await origins.use('a', (client) => client.read());
    await origins.use('b', (client) => client.read());
    await origins.use('a', (client) => client.read());
    await origins.use('c', (client) => client.read());
    // b was the least recently used: closed; a and c stay open.
    expect(closed).toEqual(['b']);
    expect(opened.filter((client) => client.closed).map((client) => client.bucket)).toEqual(['b']);
    expect(origins.size).toBe(2);
    for (let index = 0; index < 1000; index++) {
      await origins.use(`bucket-${index}`, (client) => client.read());
      expect(origins.size).toBeLessThanOrEqual(2);
    }
    expect(opened.filter((client) => !client.closed)).toHaveLength(2);
    // A bucket used again after its client was closed gets a new one.
    expect(await origins.use('b', (client) => client.read())).toBe('b');
    expect(opened.filter((client) => client.bucket === 'b')).toHaveLength(2);
  });

  it('does not close a client under a fill still using it: the evicted client closes when its last user ends', async () => {
    const { origins, opened, closed } = pool(1);
    const held = gate();
    const started = gate();
    // A fill of bucket a that reads through its client only once the gate opens.
    const fill = origins.use('a', async (client) => {
      started.open();
      await held.opened;
      return client.read();
    });
    await started.opened;
    // Another bucket evicts a while its fill is in flight.
    await origins.use('b', (client) => client.read());
    const [first] = opened;
    expect(first?.closed).toBe(false);
    expect(origins.size).toBe(2);
    held.open();
    expect(await fill).toBe('a');
    expect(first?.closed).toBe(true);
    expect(closed).toEqual(['a']);
    expect(origins.size).toBe(1);
    // a is out of the pool: a new fill of it gets a client of its own.
    expect(await origins.use('a', (client) => client.read())).toBe('a');
    expect(opened.map((client) => client.bucket)).toEqual(['a', 'b', 'a']);
  });

  it('closes an evicted client only after every concurrent user of it has ended, also when work fails', async () => {
    const { origins, opened } = pool(1);
    const held = gate();
    const users = [
      origins.use('a', async (client) => {
        await held.opened;
        return client.read();
      }),
      origins.use('a', async () => {
        await held.opened;
        throw new Error('the fill failed');
      }),
    ];
    await origins.use('b', (client) => client.read());
    expect(opened[0]?.closed).toBe(false);
    held.open();
    const results = await Promise.allSettled(users);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected']);
    expect(opened[0]?.closed).toBe(true);
  });

  it('discards a client on request, leaving the others their places (closed once its users end)', async () => {
    const { origins, opened, closed } = pool(2);
    await origins.use('real', (client) => client.read());
    const held = gate();
    const absent = origins.use('absent', async (client) => {
      await held.opened;
      return client.read();
    });
    await Promise.resolve();
    origins.discard('absent');
    origins.discard('never-opened');
    expect(opened.find((client) => client.bucket === 'absent')?.closed).toBe(false);
    held.open();
    await absent;
    expect(closed).toEqual(['absent']);
    // The place it left goes to the next bucket; the real one stays open.
    await origins.use('other', (client) => client.read());
    expect(opened.find((client) => client.bucket === 'real')?.closed).toBe(false);
    expect(origins.size).toBe(2);
  });

  it('closes idle clients at close(), busy ones when their work ends, and refuses new work', async () => {
    const { origins, opened } = pool(4);
    await origins.use('idle', (client) => client.read());
    const held = gate();
    const busy = origins.use('busy', async (client) => {
      await held.opened;
      return client.read();
    });
    await Promise.resolve();
    origins.close();
    expect(opened.find((client) => client.bucket === 'idle')?.closed).toBe(true);
    expect(opened.find((client) => client.bucket === 'busy')?.closed).toBe(false);
    await expect(origins.use('other', (client) => client.read())).rejects.toThrow(/closed/);
    held.open();
    expect(await busy).toBe('busy');
    expect(opened.every((client) => client.closed)).toBe(true);
    expect(origins.size).toBe(0);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => pool(0)).toThrow(/positive integer/);
  });
});
