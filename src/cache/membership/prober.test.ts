import pino from 'pino';
import { silentLogger } from '../../log/logger';
import { NoPeers, type PeerPicker } from '../ring';
import { ProbeTimeout, type Probe } from './membership';
import { PeerProber, PROBER_DEFAULTS } from './prober';

const GiB = 2 ** 30;
const A = 'http://10.0.0.1:8470';
const B = 'http://10.0.0.2:8470';
const C = 'http://10.0.0.3:8470';

/** A cluster of fake cache servers: each answers its capacity, refuses, or never answers. */
class FakeServers {
  readonly capacity = new Map<string, number | 'down' | 'hang'>();
  readonly probed: string[] = [];
  readonly signals: AbortSignal[] = [];

  readonly probe: Probe = (url, signal) => {
    this.probed.push(url);
    this.signals.push(signal);
    const state = this.capacity.get(url) ?? 'down';
    if (state === 'hang') return new Promise(() => undefined);
    if (state === 'down') return Promise.reject(new Error(`connect ECONNREFUSED ${url}`));
    return Promise.resolve({ capacityBytes: state });
  };
}

function urls(picker: PeerPicker): string[] {
  return picker.members.map((member) => member.url);
}

describe('PeerProber', () => {
  let servers: FakeServers;
  let prober: PeerProber;
  let changes: PeerPicker[];

  beforeEach(() => {
    jest.useFakeTimers();
    servers = new FakeServers();
    prober = new PeerProber(servers.probe, silentLogger());
    changes = [];
    prober.onChange((picker) => changes.push(picker));
  });

  afterEach(() => {
    prober.close();
    jest.useRealTimers();
  });

  it('starts with NoPeers and, after the first round, holds the servers that answered, weighted by capacity', async () => {
    servers.capacity.set(A, 10 * GiB).set(B, 0.2 * GiB).set(C, 'down');
    prober.setCandidates([A, B, C]);
    expect(prober.picker()).toBe(NoPeers);

    await prober.start().ready();

    expect(prober.picker().members).toEqual([
      { url: A, weight: 10 },
      { url: B, weight: 1 },
    ]);
    expect([A, B]).toContain(prober.picker().pickPeer('some-block-0'));
    expect(changes).toHaveLength(1);
  });

  it('tells, for every candidate in the order given, whether it is in the ring and the error that keeps it out', async () => {
    const D = 'http://10.0.0.4:8470';
    servers.capacity.set(A, 'down').set(B, 4 * GiB).set(C, 'hang');
    prober.setCandidates([A, B, C]);
    const ready = prober.start().ready();
    await jest.advanceTimersByTimeAsync(PROBER_DEFAULTS.probeTimeoutMs);
    await ready;
    prober.setCandidates([A, B, C, D]);
    const [down, up, hung, unprobed] = prober.readiness();
    expect([down?.url, up?.url, hung?.url, unprobed?.url]).toEqual([A, B, C, D]);
    expect(down).toEqual({ url: A, ready: false, failure: new Error(`connect ECONNREFUSED ${A}`) });
    expect(up).toEqual({ url: B, ready: true });
    expect(hung?.ready).toBe(false);
    expect(hung?.failure).toBeInstanceOf(ProbeTimeout);
    expect(hung?.failure).toMatchObject({ timeoutMs: PROBER_DEFAULTS.probeTimeoutMs });
    // D is probed at once (it is down): until then it has no failure to show.
    expect(unprobed).toEqual({ url: D, ready: false });

    servers.capacity.set(A, 2 * GiB);
    prober.reportFailure(B);
    // The next round, which waits for C's probe to time out before it applies anything.
    await jest.advanceTimersByTimeAsync(PROBER_DEFAULTS.intervalMs + PROBER_DEFAULTS.probeTimeoutMs);
    expect(prober.readiness().map(({ url, ready }) => ({ url, ready }))).toEqual([
      { url: A, ready: true },
      { url: B, ready: true },
      { url: C, ready: false },
      { url: D, ready: false },
    ]);
    expect(prober.readiness()[3]?.failure).toEqual(new Error(`connect ECONNREFUSED ${D}`));
  });

  it('shows a server a reader reported failed as not ready until a probe brings it back', async () => {
    servers.capacity.set(A, 4 * GiB);
    prober.setCandidates([A]);
    await prober.start().ready();
    prober.reportFailure(A);
    expect(prober.readiness()).toEqual([{ url: A, ready: false, failure: new Error('a reader reported it failed') }]);
    await jest.advanceTimersByTimeAsync(PROBER_DEFAULTS.retryAfterFailureMs);
    expect(prober.readiness()).toEqual([{ url: A, ready: true }]);
  });

  it('is ready with NoPeers when no candidate answers', async () => {
    prober.setCandidates([A, B]);
    await prober.start().ready();
    expect(prober.picker()).toBe(NoPeers);
    expect(changes).toHaveLength(0);
  });

  it('lets a server join at the first round after it starts answering', async () => {
    servers.capacity.set(A, 4 * GiB);
    prober.setCandidates([A, B]);
    await prober.start().ready();
    expect(urls(prober.picker())).toEqual([A]);

    servers.capacity.set(B, 4 * GiB);
    await jest.advanceTimersByTimeAsync(PROBER_DEFAULTS.intervalMs);

    expect(urls(prober.picker())).toEqual([A, B]);
    expect(changes.map(urls)).toEqual([[A], [A, B]]);
  });

  it('drops a server as soon as a probe of it fails', async () => {
    servers.capacity.set(A, 4 * GiB).set(B, 4 * GiB);
    prober.setCandidates([A, B]);
    await prober.start().ready();

    servers.capacity.set(B, 'down');
    await jest.advanceTimersByTimeAsync(PROBER_DEFAULTS.intervalMs);

    expect(urls(prober.picker())).toEqual([A]);
    expect(changes.at(-1)?.members).toEqual([{ url: A, weight: 4 }]);
  });

  it('counts a probe that does not answer within probeTimeoutMs as a failure and aborts it', async () => {
    servers.capacity.set(A, 4 * GiB).set(B, 'hang');
    prober.setCandidates([A, B]);
    const ready = prober.start().ready();
    await jest.advanceTimersByTimeAsync(PROBER_DEFAULTS.probeTimeoutMs);
    await ready;

    expect(urls(prober.picker())).toEqual([A]);
    const bSignal = servers.signals[servers.probed.indexOf(B)];
    expect(bSignal?.aborted).toBe(true);
  });

  it('removes a server a reader reported failed at once, and lets it rejoin after the retry probe succeeds', async () => {
    servers.capacity.set(A, 4 * GiB).set(B, 4 * GiB);
    prober.setCandidates([A, B]);
    await prober.start().ready();

    prober.reportFailure(B);
    expect(urls(prober.picker())).toEqual([A]);
    expect(changes.map(urls)).toEqual([[A, B], [A]]);

    await jest.advanceTimersByTimeAsync(PROBER_DEFAULTS.retryAfterFailureMs - 1);
    expect(urls(prober.picker())).toEqual([A]);
    await jest.advanceTimersByTimeAsync(1);
    expect(urls(prober.picker())).toEqual([A, B]);
    expect(changes.map(urls)).toEqual([[A, B], [A], [A, B]]);
  });

  it('probes a server a reader found slow at once, keeping it in the ring unless that probe fails; a burst of reports costs one probe', async () => {
    servers.capacity.set(A, 4 * GiB).set(B, 4 * GiB);
    prober.setCandidates([A, B]);
    await prober.start().ready();
    const probesBefore = servers.probed.length;

    prober.reportSlow(B);
    prober.reportSlow(B);
    expect(urls(prober.picker())).toEqual([A, B]);
    await jest.advanceTimersByTimeAsync(0);
    expect(servers.probed.length - probesBefore).toBe(1);
    expect(urls(prober.picker())).toEqual([A, B]);

    servers.capacity.set(B, 'down');
    prober.reportSlow(B);
    await jest.advanceTimersByTimeAsync(0);
    expect(urls(prober.picker())).toEqual([A]);
    expect(changes.map(urls)).toEqual([[A, B], [A]]);
  });

  it('keeps a reported server out while its retry probe fails, until a later probe succeeds', async () => {
    servers.capacity.set(A, 4 * GiB);
    prober.setCandidates([A]);
    await prober.start().ready();

    servers.capacity.set(A, 'down');
    prober.reportFailure(A);
    await jest.advanceTimersByTimeAsync(PROBER_DEFAULTS.retryAfterFailureMs);
    expect(prober.picker()).toBe(NoPeers);

    servers.capacity.set(A, 4 * GiB);
    await jest.advanceTimersByTimeAsync(PROBER_DEFAULTS.intervalMs);
    expect(urls(prober.picker())).toEqual([A]);
  });

  it('does not let a probe that was under way when a reader reported the failure bring the server back', async () => {
    let answer: (value: { capacityBytes: number }) => void = () => undefined;
    let calls = 0;
    const probe: Probe = () => {
      calls += 1;
      // The first round answers at once; the second round's probe is held until after the report.
      if (calls === 1) return Promise.resolve({ capacityBytes: 4 * GiB });
      if (calls === 2) return new Promise((resolve) => (answer = resolve));
      return Promise.reject(new Error('down'));
    };
    const held = new PeerProber(probe, silentLogger(), { probeTimeoutMs: 10_000 });
    try {
      held.setCandidates([A]);
      await held.start().ready();
      await jest.advanceTimersByTimeAsync(PROBER_DEFAULTS.intervalMs);
      expect(calls).toBe(2);

      held.reportFailure(A);
      answer({ capacityBytes: 4 * GiB });
      await jest.advanceTimersByTimeAsync(0);

      expect(held.picker()).toBe(NoPeers);
    } finally {
      held.close();
    }
  });

  it('ignores a report about a URL that is not a candidate', async () => {
    servers.capacity.set(A, 4 * GiB);
    prober.setCandidates([A]);
    await prober.start().ready();
    prober.reportFailure(B);
    expect(urls(prober.picker())).toEqual([A]);
    expect(changes).toHaveLength(1);
  });

  it('announces a change of weight, and nothing when the members and weights stay the same', async () => {
    servers.capacity.set(A, 4 * GiB).set(B, 8 * GiB);
    prober.setCandidates([A, B]);
    await prober.start().ready();
    const first = prober.picker();

    // 4.2 GiB still rounds to weight 4.
    servers.capacity.set(A, 4.2 * GiB);
    await jest.advanceTimersByTimeAsync(3 * PROBER_DEFAULTS.intervalMs);
    expect(changes).toHaveLength(1);
    expect(prober.picker()).toBe(first);
    expect(servers.probed.filter((url) => url === A).length).toBeGreaterThanOrEqual(4);

    servers.capacity.set(A, 16 * GiB);
    await jest.advanceTimersByTimeAsync(PROBER_DEFAULTS.intervalMs);
    expect(changes).toHaveLength(2);
    expect(prober.picker().members).toEqual([
      { url: A, weight: 16 },
      { url: B, weight: 8 },
    ]);
  });

  it('treats an answer without a sensible capacity as not ready', async () => {
    const bad = new PeerProber(() => Promise.resolve({ capacityBytes: Number.NaN }), silentLogger());
    try {
      bad.setCandidates([A]);
      await bad.start().ready();
      expect(bad.picker()).toBe(NoPeers);
    } finally {
      bad.close();
    }
  });

  it('drops servers no longer listed at once and probes new candidates without waiting for the next round', async () => {
    servers.capacity.set(A, 4 * GiB).set(B, 4 * GiB).set(C, 4 * GiB);
    prober.setCandidates([A, B]);
    await prober.start().ready();

    prober.setCandidates([B, C]);
    expect(urls(prober.picker())).toEqual([B]);
    await jest.advanceTimersByTimeAsync(0);
    expect(urls(prober.picker())).toEqual([B, C]);
  });

  it('probes nothing before start() and nothing after close()', async () => {
    servers.capacity.set(A, 4 * GiB);
    prober.setCandidates([A]);
    await jest.advanceTimersByTimeAsync(2 * PROBER_DEFAULTS.intervalMs);
    expect(servers.probed).toEqual([]);

    await prober.start().ready();
    prober.close();
    const probes = servers.probed.length;
    prober.reportFailure(A);
    await jest.advanceTimersByTimeAsync(3 * PROBER_DEFAULTS.intervalMs);
    expect(servers.probed).toHaveLength(probes);
    await expect(prober.ready()).resolves.toBeUndefined();
  });

  it('keeps telling the other listeners when one listener throws', async () => {
    const seen: number[] = [];
    prober.onChange(() => {
      throw new Error('listener bug');
    });
    prober.onChange((picker) => seen.push(picker.members.length));
    servers.capacity.set(A, 4 * GiB);
    prober.setCandidates([A]);
    await prober.start().ready();
    expect(seen).toEqual([1]);
  });

  it('logs joins and leaves at info with the server URL', async () => {
    const lines: { level: number; msg: string; peer?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const logged = new PeerProber(servers.probe, logger);
    try {
      servers.capacity.set(A, 4 * GiB);
      logged.setCandidates([A]);
      await logged.start().ready();
      logged.reportFailure(A);
      expect(lines.map((line) => [line.level, line.peer, line.msg])).toEqual([
        [30, A, 'cache server joined the ring'],
        [30, A, 'cache server left the ring: a reader reported it failed'],
      ]);
    } finally {
      logged.close();
    }
  });

  it('rejects timings that are not positive', () => {
    expect(() => new PeerProber(servers.probe, silentLogger(), { intervalMs: 0 })).toThrow(/intervalMs must be a positive number/);
    expect(() => new PeerProber(servers.probe, silentLogger(), { probeTimeoutMs: Number.NaN })).toThrow(/probeTimeoutMs/);
  });
});
