// The background aborter: bounded exponential backoff under a fake clock, giving up, and the bounded drain at unmount.
import { silentLogger } from '../../log/logger';
import { ObjectStoreError } from '../../objectstore/errors';
import { retryDelay, UploadAborter, type AbortJob, type Sleep } from './upload-aborter';

const POLICY = { attempts: 5, firstDelayMs: 1000, maxDelayMs: 3000 };

/** A Sleep that records each wait and resolves only when the test says so (or the signal aborts). */
function fakeSleep(): { sleep: Sleep; waits: number[]; wake(): void; waiting(): Promise<void> } {
  const waits: number[] = [];
  let wake: () => void = () => undefined;
  let onWait: () => void = () => undefined;
  const sleep: Sleep = (ms, signal) => new Promise<void>((resolve) => {
    waits.push(ms);
    wake = resolve;
    signal.addEventListener('abort', () => resolve(), { once: true });
    onWait();
  });
  const waiting = () => new Promise<void>((resolve) => (onWait = resolve));
  return { sleep, waits, wake: () => wake(), waiting };
}

/** A job whose abort fails `failures` times, then succeeds. */
function flakyJob(failures: number): AbortJob & { tries: number; confirmed: number } {
  const job = {
    key: 'ckpt.pt',
    uploadId: 'upload-1',
    tries: 0,
    confirmed: 0,
    abort: async () => {
      job.tries++;
      if (job.tries <= failures) throw new ObjectStoreError('Unavailable', 'connect ECONNREFUSED');
    },
    aborted: () => {
      job.confirmed++;
    },
  };
  return job;
}

describe('UploadAborter', () => {
  it('doubles the wait between tries up to the cap', () => {
    expect([1, 2, 3, 4, 5].map((retry) => retryDelay(POLICY, retry))).toEqual([1000, 2000, 3000, 3000, 3000]);
  });

  it('retries a failing abort with backoff until it succeeds, then confirms it once', async () => {
    const clock = fakeSleep();
    const aborter = new UploadAborter(POLICY, silentLogger(), clock.sleep);
    const job = flakyJob(3);
    let waiting = clock.waiting();
    const outcome = aborter.abort(job);
    for (let retry = 1; retry <= 3; retry++) {
      await waiting;
      expect(job.tries).toBe(retry);
      waiting = clock.waiting();
      clock.wake();
    }
    expect(await outcome).toBe(true);
    expect(job.tries).toBe(4);
    expect(job.confirmed).toBe(1);
    expect(clock.waits).toEqual([1000, 2000, 3000]);
    expect(aborter.pending).toBe(0);
  });

  it('gives up after policy.attempts tries and does not confirm', async () => {
    const clock = fakeSleep();
    const aborter = new UploadAborter(POLICY, silentLogger(), clock.sleep);
    const job = flakyJob(100);
    const outcome = aborter.abort(job);
    for (let retry = 1; retry < POLICY.attempts; retry++) {
      await waitUntil(() => clock.waits.length === retry);
      clock.wake();
    }
    expect(await outcome).toBe(false);
    expect(job.tries).toBe(POLICY.attempts);
    expect(job.confirmed).toBe(0);
  });

  it('waits for `after` (the parts still uploading) before the first try', async () => {
    const aborter = new UploadAborter(POLICY, silentLogger(), fakeSleep().sleep);
    let partsSettled: () => void = () => undefined;
    const job = Object.assign(flakyJob(0), { after: new Promise<void>((resolve) => (partsSettled = resolve)) });
    const outcome = aborter.abort(job);
    await new Promise((resolve) => setImmediate(resolve));
    expect(job.tries).toBe(0);
    partsSettled();
    expect(await outcome).toBe(true);
    expect(job.tries).toBe(1);
  });

  it('returns from abort() before the store answers', () => {
    const aborter = new UploadAborter(POLICY, silentLogger(), fakeSleep().sleep);
    const job = Object.assign(flakyJob(0), { abort: () => new Promise<void>(() => undefined) });
    void aborter.abort(job);
    expect(aborter.pending).toBe(1);
  });

  it('drain waits a bounded time, then stops the retries and says how many are left', async () => {
    const clock = fakeSleep();
    const aborter = new UploadAborter(POLICY, silentLogger(), clock.sleep);
    const quick = flakyJob(0);
    const stuck = flakyJob(100);
    const waiting = clock.waiting();
    void aborter.abort(quick);
    const stuckOutcome = aborter.abort(stuck);
    await waiting; // the stuck one sleeps before its second try
    expect(await aborter.drain(20)).toBe(1);
    expect(await stuckOutcome).toBe(false);
    expect(quick.confirmed).toBe(1);
    expect(stuck.tries).toBe(1);
    expect(aborter.pending).toBe(0);
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}
