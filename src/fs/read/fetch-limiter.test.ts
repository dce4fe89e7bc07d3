import { FetchLimiter } from './fetch-limiter';

/** A task that finishes when told to. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, task: async () => opened };
}

describe('FetchLimiter', () => {
  it('runs at most `limit` tasks at once and starts demand before readahead', async () => {
    const limiter = new FetchLimiter(1);
    const order: string[] = [];
    const first = gate();
    const running = limiter.schedule('demand', first.task);
    const ahead = limiter.schedule('readahead', async () => void order.push('readahead'));
    const demand = limiter.schedule('demand', async () => void order.push('demand'));
    expect(limiter.active).toBe(1);
    expect(limiter.queued).toBe(2);
    first.open();
    await Promise.all([running.result, ahead.result, demand.result]);
    expect(order).toEqual(['demand', 'readahead']);
  });

  it('moves a promoted readahead task ahead of other readahead', async () => {
    const limiter = new FetchLimiter(1);
    const order: string[] = [];
    const first = gate();
    const running = limiter.schedule('demand', first.task);
    const a = limiter.schedule('readahead', async () => void order.push('a'));
    const b = limiter.schedule('readahead', async () => void order.push('b'));
    b.promote();
    first.open();
    await Promise.all([running.result, a.result, b.result]);
    expect(order).toEqual(['b', 'a']);
  });

  it('frees the slot of a failed task', async () => {
    const limiter = new FetchLimiter(1);
    await expect(limiter.schedule('demand', async () => Promise.reject(new Error('boom'))).result).rejects.toThrow('boom');
    await expect(limiter.schedule('demand', async () => 7).result).resolves.toBe(7);
    expect(limiter.active).toBe(0);
  });
});
