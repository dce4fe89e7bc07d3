import { sleep, sleepUnlessAborted } from './sleep';

describe('sleep', () => {
  it('resolves after the time', async () => {
    const started = Date.now();
    await sleep(20);
    expect(Date.now() - started).toBeGreaterThanOrEqual(15);
  });

  it('rejects with the signal\'s reason when aborted while waiting, long before the time', async () => {
    const controller = new AbortController();
    const waiting = sleep(60_000, controller.signal);
    const reason = new Error('the mount is closing');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const reason = new Error('already gone');
    await expect(sleep(60_000, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it('leaves no abort listener behind once it resolved', async () => {
    const controller = new AbortController();
    let calls = 0;
    const original = controller.signal.removeEventListener.bind(controller.signal);
    controller.signal.removeEventListener = ((...args: Parameters<AbortSignal['removeEventListener']>) => {
      calls++;
      original(...args);
    }) as AbortSignal['removeEventListener'];
    await sleep(1, controller.signal);
    expect(calls).toBe(1);
  });
});

describe('sleepUnlessAborted', () => {
  it('resolves early, without an error, when the signal aborts', async () => {
    const controller = new AbortController();
    const waiting = sleepUnlessAborted(60_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).resolves.toBeUndefined();
  });
});
