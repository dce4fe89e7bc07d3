import { PrefetchGate } from './prefetch-gate';

describe('PrefetchGate', () => {
  it('runs at most `concurrency` tasks at once, in the order they came', async () => {
    const gate = new PrefetchGate(2, 10);
    const opened: number[] = [];
    const finish: Array<() => void> = [];
    const runs = [0, 1, 2, 3].map((n) => gate.run(() => new Promise<number>((resolve) => {
      opened.push(n);
      finish[n] = () => resolve(n);
    })));
    await Promise.resolve();
    expect(opened).toEqual([0, 1]);
    finish[1]?.();
    await runs[1];
    await new Promise((resolve) => setImmediate(resolve));
    expect(opened).toEqual([0, 1, 2]);
    finish[0]?.();
    finish[2]?.();
    await new Promise((resolve) => setImmediate(resolve));
    finish[3]?.();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3]);
  });

  it('drops the oldest waiters beyond maxWaiting: they resolve undefined without running', async () => {
    const gate = new PrefetchGate(1, 2);
    let release!: () => void;
    const first = gate.run(() => new Promise<string>((resolve) => (release = () => resolve('first'))));
    const ran: string[] = [];
    const waiters = ['a', 'b', 'c'].map((name) => gate.run(async () => (ran.push(name), name)));
    expect(await waiters[0]).toBeUndefined();
    release();
    expect(await first).toBe('first');
    expect(await Promise.all(waiters.slice(1))).toEqual(['b', 'c']);
    expect(ran).toEqual(['b', 'c']);
  });
});
