import { startStaggered, type StaggerState } from './stagger';

/** Readers whose progress the test sets by hand. */
function readers(count: number) {
  const progress = Array.from({ length: count }, () => 0);
  const finished = Array.from({ length: count }, () => false);
  let stopped = false;
  const state: StaggerState = { progress: (index) => progress[index]!, finished: (index) => finished[index]!, stopped: () => stopped };
  return { progress, finished, state, stop: () => { stopped = true; } };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('startStaggered', () => {
  it('starts everybody at once, in order, without a stagger', async () => {
    const started: number[] = [];
    const { state } = readers(3);
    const all = startStaggered(3, 0, state, (index) => started.push(index), 1);
    expect(started).toEqual([0, 1, 2]);
    await all;
  });

  it('starts each reader only once the one before it has read the stagger', async () => {
    const started: number[] = [];
    const { progress, state } = readers(3);
    const all = startStaggered(3, 100, state, (index) => started.push(index), 1);
    await tick();
    expect(started).toEqual([0]);
    progress[0] = 99;
    await tick();
    expect(started).toEqual([0]);
    progress[0] = 100;
    await tick();
    expect(started).toEqual([0, 1]);
    // Reader 2 waits for reader 1, not for reader 0.
    progress[0] = 1000;
    await tick();
    expect(started).toEqual([0, 1]);
    progress[1] = 150;
    await all;
    expect(started).toEqual([0, 1, 2]);
  });

  it('does not let a reader that finished short of the stagger hold up the next', async () => {
    const started: number[] = [];
    const { finished, state } = readers(2);
    const all = startStaggered(2, 100, state, (index) => started.push(index), 1);
    await tick();
    finished[0] = true;
    await all;
    expect(started).toEqual([0, 1]);
  });

  it('starts nobody else once the run has stopped', async () => {
    const started: number[] = [];
    const { state, stop } = readers(3);
    const all = startStaggered(3, 100, state, (index) => started.push(index), 1);
    await tick();
    stop();
    await all;
    expect(started).toEqual([0]);
  });
});
