// What every source of cache ring membership offers (a static list, Kubernetes EndpointSlices): the live
// ring of ready cache servers, and the probe that decides which candidates are ready.
import type { PeerPicker } from '../ring';

/** Asks one cache server for its capacity (GET /v1/info with the token); rejects when it is down or not ready. */
export type Probe = (url: string, signal: AbortSignal) => Promise<{ capacityBytes: number }>;

/** One cache server a membership was given (listed, or discovered) and whether it is in the ring. */
export interface PeerReadiness {
  url: string;
  ready: boolean;
  /** Why it is not in the ring: the error of its last probe (undefined while it has not been probed yet). */
  failure?: unknown;
}

/** A candidate's probe took longer than the prober allows; it counts as failed. */
export class ProbeTimeout extends Error {
  override readonly name = 'ProbeTimeout';

  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
  }
}

/** A discovered endpoint that its source itself reports not ready (Kubernetes: the pod fails its readiness probe). */
export class EndpointNotReady extends Error {
  override readonly name = 'EndpointNotReady';
}

/** The live ring of ready cache servers. */
export interface Membership {
  /** The current ring (NoPeers until a first member is ready). */
  picker(): PeerPicker;
  /** Resolves once the first round of probes has finished (whatever it found), so a mount starts with a ring. */
  ready(): Promise<void>;
  /** A reader saw `url` fail (connection refused or reset, 5xx): drop it from the ring now and re-probe it soon. */
  reportFailure(url: string): void;
  /** A reader timed out waiting for `url`: probe it now, and drop it from the ring only if the probe fails. */
  reportSlow(url: string): void;
  /** Every cache server listed or discovered, in the order given, with whether it is in the ring and why not. */
  readiness(): PeerReadiness[];
  /** Called with the new ring each time it changes. */
  onChange(listener: (picker: PeerPicker) => void): void;
  /** Stops probing (and watching); the ring no longer changes. */
  close(): void;
}
