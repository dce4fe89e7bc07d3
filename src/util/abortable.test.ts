import { getEventListeners } from 'node:events';
import { untilAborted } from './abortable';

describe('untilAborted', () => {
  it('settles as the promise does while the signal stays quiet', async () => {
    const controller = new AbortController();
    await expect(untilAborted(Promise.resolve(7), controller.signal)).resolves.toBe(7);
    await expect(untilAborted(Promise.reject(new Error('no')), controller.signal)).rejects.toThrow('no');
    await expect(untilAborted(Promise.resolve(8))).resolves.toBe(8);
  });

  it('rejects with the reason when the signal aborts first, or had already', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const waiting = untilAborted(new Promise(() => undefined), controller.signal);
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    await expect(untilAborted(Promise.resolve(1), controller.signal)).rejects.toBe(reason);
  });

  it('leaves no listener on the signal once the promise settled', async () => {
    const controller = new AbortController();
    await untilAborted(Promise.resolve(1), controller.signal);
    await untilAborted(Promise.reject(new Error('no')), controller.signal).catch(() => undefined);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
