// The engine behind every membership source: probes a list of candidate cache servers and keeps the ring
// of those that answered, each weighted by the capacity it reported.
import type { Logger } from '../../log/logger';
import { NoPeers, Ring, weightOf, type PeerPicker, type RingMember } from '../ring';
import { ProbeTimeout, type Membership, type PeerReadiness, type Probe } from './membership';

/** Timing of a PeerProber (see PROBER_DEFAULTS). */
export interface PeerProberOptions {
  /** How often every candidate is probed, in milliseconds. */
  intervalMs?: number;
  /** How long one probe may take before it counts as a failure, in milliseconds. */
  probeTimeoutMs?: number;
  /** How soon a server that a reader reported failed is probed again, in milliseconds. */
  retryAfterFailureMs?: number;
}

/** Defaults: a probe round every 5 s, 2 s per probe, a reported server re-probed after 1 s. */
export const PROBER_DEFAULTS: Readonly<Required<PeerProberOptions>> = {
  intervalMs: 5000,
  probeTimeoutMs: 2000,
  retryAfterFailureMs: 1000,
};

interface Candidate {
  /** Bumped when a reader reports the server failed, so a probe that was already under way cannot bring it back. */
  generation: number;
  /** The capacity its last probe reported; undefined while it is out of the ring. */
  capacityBytes: number | undefined;
  /** Why its last probe failed (or a reader reported it); undefined while in the ring or not yet probed. */
  failure: unknown;
  retry: NodeJS.Timeout | undefined;
  /** A probe asked by reportSlow is under way. */
  slowProbe: boolean;
}

type ProbeOutcome = { ok: true; capacityBytes: number } | { ok: false; reason: string; error: unknown };

/**
 * Probes every candidate URL every `intervalMs` and keeps a Ring of those whose last probe succeeded.
 * A failed probe or a reader's report takes a server out of the ring at once; a later successful probe
 * brings it back. Listeners hear of a new ring only when its members or weights change.
 */
export class PeerProber implements Membership {
  private readonly options: Readonly<Required<PeerProberOptions>>;
  private readonly candidates = new Map<string, Candidate>();
  private readonly listeners: ((picker: PeerPicker) => void)[] = [];
  private readonly probesInFlight = new Set<AbortController>();
  private current: PeerPicker = NoPeers;
  private roundTimer: NodeJS.Timeout | undefined;
  private roundRunning = false;
  private started = false;
  private closed = false;
  private readonly firstRound: Promise<void>;
  private firstRoundDone: () => void = () => undefined;

  constructor(
    private readonly probe: Probe,
    private readonly logger: Logger,
    options: PeerProberOptions = {},
  ) {
    this.options = {
      intervalMs: options.intervalMs ?? PROBER_DEFAULTS.intervalMs,
      probeTimeoutMs: options.probeTimeoutMs ?? PROBER_DEFAULTS.probeTimeoutMs,
      retryAfterFailureMs: options.retryAfterFailureMs ?? PROBER_DEFAULTS.retryAfterFailureMs,
    };
    for (const [name, value] of Object.entries(this.options)) {
      if (!(Number.isFinite(value) && value > 0)) throw new Error(`membership option ${name} must be a positive number of milliseconds, got ${value}`);
    }
    this.firstRound = new Promise((resolve) => (this.firstRoundDone = resolve));
  }

  /** Starts probing: a first round now (ready() resolves when it ends), then one every intervalMs. */
  start(): this {
    if (this.started || this.closed) return this;
    this.started = true;
    void this.round().then(() => this.firstRoundDone());
    this.roundTimer = setInterval(() => void this.round(), this.options.intervalMs);
    this.roundTimer.unref();
    return this;
  }

  /** Replaces the candidate list: servers no longer listed leave the ring at once, new ones are probed at once. */
  setCandidates(urls: readonly string[]): void {
    if (this.closed) return;
    const next = new Set(urls);
    let memberRemoved = false;
    for (const [url, candidate] of this.candidates) {
      if (next.has(url)) continue;
      clearTimeout(candidate.retry);
      this.candidates.delete(url);
      if (candidate.capacityBytes !== undefined) {
        this.logger.info({ peer: url }, 'cache server left the ring: no longer listed');
        memberRemoved = true;
      }
    }
    const added = [...next].filter((url) => !this.candidates.has(url));
    for (const url of added) this.candidates.set(url, { generation: 0, capacityBytes: undefined, failure: undefined, retry: undefined, slowProbe: false });
    if (memberRemoved) this.rebuild();
    if (this.started && added.length > 0) void this.probeAll(added);
  }

  picker(): PeerPicker {
    return this.current;
  }

  ready(): Promise<void> {
    return this.firstRound;
  }

  readiness(): PeerReadiness[] {
    return [...this.candidates].map(([url, candidate]) => ({
      url,
      ready: candidate.capacityBytes !== undefined,
      ...(candidate.capacityBytes === undefined && candidate.failure !== undefined && { failure: candidate.failure }),
    }));
  }

  reportFailure(url: string): void {
    const candidate = this.candidates.get(url);
    if (candidate === undefined || this.closed) return;
    candidate.generation += 1;
    if (candidate.capacityBytes !== undefined) {
      candidate.failure = new Error('a reader reported it failed');
      candidate.capacityBytes = undefined;
      this.logger.info({ peer: url }, 'cache server left the ring: a reader reported it failed');
      this.rebuild();
    }
    if (candidate.retry === undefined) {
      candidate.retry = setTimeout(() => {
        candidate.retry = undefined;
        void this.probeAll([url]);
      }, this.options.retryAfterFailureMs);
      candidate.retry.unref();
    }
  }

  reportSlow(url: string): void {
    const candidate = this.candidates.get(url);
    // Out of the ring already (a probe is due), or being probed for a report: a burst of timeouts costs one probe.
    if (candidate === undefined || this.closed || candidate.capacityBytes === undefined || candidate.slowProbe) return;
    candidate.slowProbe = true;
    void this.probeAll([url]).finally(() => (candidate.slowProbe = false));
  }

  onChange(listener: (picker: PeerPicker) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.roundTimer);
    for (const candidate of this.candidates.values()) clearTimeout(candidate.retry);
    for (const controller of this.probesInFlight) controller.abort(new Error('membership closed'));
    this.listeners.length = 0;
    this.firstRoundDone();
  }

  private async round(): Promise<void> {
    // A round slower than the interval (probes timing out) is not stacked with the next one.
    if (this.roundRunning || this.closed) return;
    this.roundRunning = true;
    try {
      await this.probeAll([...this.candidates.keys()]);
    } finally {
      this.roundRunning = false;
    }
  }

  /** Probes `urls` together, then applies every outcome and rebuilds the ring once. */
  private async probeAll(urls: readonly string[]): Promise<void> {
    const probes = urls.flatMap((url) => {
      const candidate = this.candidates.get(url);
      return candidate === undefined ? [] : [{ url, candidate, generation: candidate.generation }];
    });
    const outcomes = await Promise.all(probes.map(async (probe) => ({ ...probe, outcome: await this.probeOne(probe.url) })));
    if (this.closed) return;
    let changed = false;
    for (const { url, candidate, generation, outcome } of outcomes) {
      const stale = this.candidates.get(url) !== candidate || candidate.generation !== generation;
      if (!stale && this.apply(url, candidate, outcome)) changed = true;
    }
    if (changed) this.rebuild();
  }

  /** Records one probe's outcome; true when the server joined, left or changed weight. */
  private apply(url: string, candidate: Candidate, outcome: ProbeOutcome): boolean {
    const before = candidate.capacityBytes;
    if (!outcome.ok) {
      candidate.failure = outcome.error;
      if (before === undefined) {
        this.logger.debug({ peer: url, reason: outcome.reason }, 'cache server not ready');
        return false;
      }
      candidate.capacityBytes = undefined;
      this.logger.info({ peer: url, reason: outcome.reason }, 'cache server left the ring: probe failed');
      return true;
    }
    candidate.capacityBytes = outcome.capacityBytes;
    candidate.failure = undefined;
    const weight = weightOf(outcome.capacityBytes);
    if (before === undefined) {
      this.logger.info({ peer: url, capacityBytes: outcome.capacityBytes, weight }, 'cache server joined the ring');
      return true;
    }
    if (weightOf(before) === weight) return false;
    this.logger.info({ peer: url, capacityBytes: outcome.capacityBytes, weight, previousWeight: weightOf(before) }, 'cache server weight changed');
    return true;
  }

  private async probeOne(url: string): Promise<ProbeOutcome> {
    const controller = new AbortController();
    this.probesInFlight.add(controller);
    let timer: NodeJS.Timeout | undefined;
    // The timeout also races the probe itself, so a probe that ignores its signal cannot stall a round.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new ProbeTimeout(this.options.probeTimeoutMs);
        controller.abort(error);
        reject(error);
      }, this.options.probeTimeoutMs);
    });
    try {
      const { capacityBytes } = await Promise.race([this.probe(url, controller.signal), timeout]);
      if (!(Number.isFinite(capacityBytes) && capacityBytes >= 0)) {
        const error = new Error(`it reported an invalid capacity (${capacityBytes})`);
        return { ok: false, reason: error.message, error };
      }
      return { ok: true, capacityBytes };
    } catch (error) {
      return { ok: false, reason: reasonOf(error), error };
    } finally {
      clearTimeout(timer);
      this.probesInFlight.delete(controller);
    }
  }

  private rebuild(): void {
    const members: RingMember[] = [];
    for (const [url, candidate] of this.candidates) {
      if (candidate.capacityBytes !== undefined) members.push({ url, weight: weightOf(candidate.capacityBytes) });
    }
    const ring = new Ring(members);
    if (ring.sameAs(this.current)) return;
    this.current = ring.members.length === 0 ? NoPeers : ring;
    this.logger.debug({ members: ring.members.length }, 'cache ring changed');
    for (const listener of [...this.listeners]) {
      try {
        listener(this.current);
      } catch (error) {
        this.logger.warn({ err: error }, 'a cache ring listener failed');
      }
    }
  }
}

function reasonOf(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string') return error.message;
  return String(error);
}
