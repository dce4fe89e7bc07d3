import { DEFAULT_CACHE_OPTIONS, withServerCaps } from './options';
import { columnSettings, notesPerRun } from './report';

describe('columnSettings', () => {
  const options = withServerCaps(DEFAULT_CACHE_OPTIONS);

  it('says how the S3 gateway rows read, for granary+cache and for direct, when they run', () => {
    const settings = columnSettings(options);
    expect(settings['granary+cache']).toContain('in the S3 gateway rows, no mount: the servers also get `--s3-listen NODE:PORT --s3-keys-file FILE`');
    expect(settings['granary+cache']).toContain("at 127.0.0.11's gateway");
    expect(settings.direct).toContain("(its GETs take S3Store's lean SigV4 path, not the SDK's GetObject); in the S3 gateway rows, the gateway's client at the object store: a new plain @aws-sdk/client-s3 S3Client per read");
  });

  it('leaves the other columns\' settings as they were without the gateway rows', () => {
    const settings = columnSettings({ ...options, only: ['cold', 'warm-ram'] });
    expect(settings['granary+cache']).toMatch(/disk tier in a fresh temp dir each run\)$/);
    expect(settings.direct).toBe("@aws-sdk/client-s3 through granary's S3Store in the bench process: 16 × 8 MiB ranged GETs in flight, hashed in order");
  });
});

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

  it('keeps two measurements apart whose notes read alike (the mount\'s and the gateway\'s cold reads)', () => {
    const ok = { ok: true as const, value: 1 };
    const note = 'cache servers filled 1024 MiB from the object store';
    expect(notesPerRun({
      raw: [
        { row: 'cold', column: 'granary+cache', run: 1, outcome: ok, note },
        { row: 'warm-ram', column: 'granary+cache', run: 1, outcome: ok, note: 'served ram 1024 MiB' },
        { row: 'gateway-cold', column: 'granary+cache', run: 1, outcome: ok, note },
        { row: 'gateway-cold-origin', column: 'granary+cache', run: 1, outcome: ok, note },
      ],
    })).toEqual([
      `cold granary+cache run 1: ${note}`,
      'warm-ram granary+cache run 1: served ram 1024 MiB',
      `gateway-cold + gateway-cold-origin granary+cache run 1: ${note}`,
    ]);
  });
});
