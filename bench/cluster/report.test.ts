import { notesPerRun } from './report';

describe('notesPerRun', () => {
  it('gives one line per measurement, naming every row it filled, and skips runs without a note', () => {
    const ok = { ok: true as const, value: 1 };
    expect(notesPerRun({
      raw: [
        { row: 'fan-out-origin', column: 'granary', run: 1, outcome: ok, note: 'object store sent 768 MiB' },
        { row: 'fan-out-speed', column: 'granary', run: 1, outcome: ok, note: 'object store sent 768 MiB' },
        { row: 'fan-out-origin', column: 'granary', run: 2, outcome: ok, note: 'object store sent 768 MiB' },
        { row: 'cold', column: 'direct', run: 1, outcome: ok },
      ],
    })).toEqual([
      'fan-out-origin + fan-out-speed granary run 1: object store sent 768 MiB',
      'fan-out-origin granary run 2: object store sent 768 MiB',
    ]);
  });
});
