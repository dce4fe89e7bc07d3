import { SingleFlight } from './single-flight';

/** A call that finishes when told to, counting how often it was started. */
function controlled<T>() {
  let settle!: { resolve: (value: T) => void; reject: (error: Error) => void };
  let calls = 0;
  const fn = (): Promise<T> => {
    calls++;
    return new Promise<T>((resolve, reject) => (settle = { resolve, reject }));
  };
  return { fn, settle: () => settle, calls: () => calls };
}

describe('SingleFlight', () => {
  it('shares one call between concurrent callers of the same key', async () => {
    const flight = new SingleFlight<string>();
    const call = controlled<string>();
    const results = Promise.all([flight.run('k', call.fn), flight.run('k', call.fn), flight.run('k', call.fn)]);
    expect(call.calls()).toBe(1);
    expect(flight.inFlight).toBe(1);
    expect(flight.has('k')).toBe(true);
    expect(flight.has('other')).toBe(false);
    call.settle().resolve('block');
    await expect(results).resolves.toEqual(['block', 'block', 'block']);
    expect(flight.inFlight).toBe(0);
    expect(flight.has('k')).toBe(false);
  });

  it('runs different keys separately', async () => {
    const flight = new SingleFlight<string>();
    const a = flight.run('a', async () => 'A');
    const b = flight.run('b', async () => 'B');
    expect(flight.inFlight).toBe(2);
    await expect(Promise.all([a, b])).resolves.toEqual(['A', 'B']);
  });

  it('runs again once the call has succeeded', async () => {
    const flight = new SingleFlight<number>();
    let calls = 0;
    await flight.run('k', async () => ++calls);
    await expect(flight.run('k', async () => ++calls)).resolves.toBe(2);
  });

  it('shares a failure with the waiting callers, then forgets it', async () => {
    const flight = new SingleFlight<string>();
    const call = controlled<string>();
    const first = flight.run('k', call.fn);
    const second = flight.run('k', call.fn);
    call.settle().reject(new Error('origin down'));
    await expect(first).rejects.toThrow('origin down');
    await expect(second).rejects.toThrow('origin down');
    expect(flight.inFlight).toBe(0);
    await expect(flight.run('k', async () => 'back')).resolves.toBe('back');
  });

  it('turns a synchronous throw into a rejection and frees the key', async () => {
    const flight = new SingleFlight<string>();
    const thrower = (): Promise<string> => {
      throw new Error('bad call');
    };
    await expect(flight.run('k', thrower)).rejects.toThrow('bad call');
    expect(flight.inFlight).toBe(0);
  });

  it('has freed the key by the time a caller sees the result', async () => {
    const flight = new SingleFlight<string>();
    let calls = 0;
    const again = await flight.run('k', async () => {
      calls++;
      return 'first';
    }).then(() => flight.run('k', async () => `call ${++calls}`));
    expect(again).toBe('call 2');
  });
});
