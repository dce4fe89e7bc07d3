import { CsiError } from './errors';
import { InFlight } from './inflight';

describe('InFlight', () => {
  it('answers ABORTED to a second operation on a busy volume and frees it afterwards', async () => {
    const inflight = new InFlight();
    let release!: () => void;
    const first = inflight.run('vol-1', 'NodeStageVolume', () => new Promise<string>((r) => { release = () => r('done'); }));
    await expect(inflight.run('vol-1', 'NodeUnstageVolume', async () => 'second')).rejects.toMatchObject({
      code: 'ABORTED',
      message: expect.stringContaining('NodeStageVolume'),
    });
    expect(inflight.size).toBe(1);
    release();
    await expect(first).resolves.toBe('done');
    expect(inflight.size).toBe(0);
    await expect(inflight.run('vol-1', 'NodeUnstageVolume', async () => 'third')).resolves.toBe('third');
  });

  it('lets different volumes run at once', async () => {
    const inflight = new InFlight();
    const results = await Promise.all([
      inflight.run('a', 'op', async () => 1),
      inflight.run('b', 'op', async () => 2),
    ]);
    expect(results).toEqual([1, 2]);
  });

  it('frees the volume when the operation fails', async () => {
    const inflight = new InFlight();
    await expect(inflight.run('a', 'op', async () => { throw new CsiError('INTERNAL', 'boom'); })).rejects.toThrow('boom');
    expect(inflight.size).toBe(0);
  });
});
