// The mount's way to the cluster cache: a BlockFetcher that asks each block's owner on the ring, and reads
// from the object store itself when there is no owner or the owner fails. A read never fails because the
// cache failed (groupcache: a peer error is counted, then the group loads locally).
import { blockIndexOf } from '../blocks/block-math';
import type { BlockRequest, BlockFetcher } from '../blocks/block-fetcher';
import type { Logger } from '../log/logger';
import { blockId, blockRange, type BlockRef } from './block';
import { PeerError, type PeerClient } from './peer-client';
import type { Membership } from './membership/membership';
import type { ServedFrom } from './tiers/tier';
import type { TokenRefusals } from './token-refusals';

/** The part of a Membership the fetcher needs: the current ring, and where to report a failing or slow owner. */
export type OwnerDirectory = Pick<Membership, 'picker' | 'reportFailure' | 'reportSlow'>;

/** Counters of a ClusterFetcher, plain numbers that the mount logs and exports. */
export interface ClusterFetcherStats {
  /** Ranges served by their owner, and their bytes by where the owner found them. */
  peerFetches: number;
  peerBytes: Record<ServedFrom, number>;
  /** Owner requests that failed; each was read from the object store instead. */
  peerFailures: number;
  /** Ranges read from the object store because no owner was known or the object has no ETag. */
  bypassed: number;
}

/** Options of a ClusterFetcher. */
export interface ClusterFetcherOptions {
  directory: OwnerDirectory;
  client: Pick<PeerClient, 'fetchBlock'>;
  /** The object store itself: the fallback, with its own timeouts and retries. */
  origin: BlockFetcher;
  /** Names the blocks: the store's endpoint (endpointIdentity form) and bucket, and the block size the servers cache. */
  endpoint: string;
  bucket: string;
  blockSize: number;
  logger: Logger;
  /** Where a 401 is counted and warned (once per server); without it a 401 is logged like any failure. */
  refusals?: Pick<TokenRefusals, 'note'>;
}

/** Reads block ranges from their owners in the cluster cache, falling back to the object store. */
export class ClusterFetcher implements BlockFetcher {
  /** Counters since creation. */
  readonly stats: ClusterFetcherStats = { peerFetches: 0, peerBytes: { ram: 0, disk: 0, origin: 0 }, peerFailures: 0, bypassed: 0 };
  private lastFailureLog = 0;

  constructor(private readonly options: ClusterFetcherOptions) {}

  async fetch(request: BlockRequest): Promise<Buffer> {
    const ref = this.refOf(request);
    const owner = ref && this.options.directory.picker().pickPeer(blockId(ref));
    if (!ref || !owner) {
      this.stats.bypassed++;
      return this.options.origin.fetch(request);
    }
    try {
      const { data, servedFrom } = await this.options.client.fetchBlock(owner, ref, request, {
        ...(request.into && { into: request.into }),
        ...(request.signal && { signal: request.signal }),
      });
      this.stats.peerFetches++;
      this.stats.peerBytes[servedFrom] += data.length;
      return data;
    } catch (error) {
      if (request.signal?.aborted) throw request.signal.reason ?? error;
      this.stats.peerFailures++;
      this.noteFailure(owner, error);
      return this.options.origin.fetch(request);
    }
  }

  /** The block the request lies in, or undefined when it cannot be cached (no ETag, size unknown, crosses a block). */
  private refOf(request: BlockRequest): BlockRef | undefined {
    const { key, etag, start, end, objectSize } = request;
    if (etag === '' || objectSize === undefined) return undefined;
    const ref: BlockRef = { endpoint: this.options.endpoint, bucket: this.options.bucket, key, etag, objectSize, index: blockIndexOf(start, this.options.blockSize), blockSize: this.options.blockSize };
    return end <= blockRange(ref).end ? ref : undefined;
  }

  private noteFailure(owner: string, error: unknown): void {
    const code = error instanceof PeerError ? error.code : 'Unavailable';
    // Why a timeout does not drop the owner: a slow answer is most often a fill from a slow object store, and
    // every mount that dropped a live owner would send its blocks to other servers, which fill them again from
    // the object store. A probe (which fills nothing) tells a hung server from a busy one.
    // Something other than a cache server on that port is as useless as a dead one, and the probes keep it out.
    if (code === 'Unavailable' || code === 'NotGranary') this.options.directory.reportFailure(owner);
    else if (code === 'TimedOut') this.options.directory.reportSlow(owner);
    // A refused token is warned once per server where it is counted, not again here once a minute.
    if (this.options.refusals?.note(owner, error)) return;
    // A configuration error (token, endpoint) repeats on every read: log it loudly, but once a minute.
    const now = Date.now();
    if (now - this.lastFailureLog < 60_000) return;
    this.lastFailureLog = now;
    const level = code === 'Unauthorized' || code === 'Rejected' || code === 'NotGranary' ? 'error' : 'warn';
    this.options.logger[level]({ owner, code, err: error }, 'a cache server failed a read; reading from the object store instead (logged at most once a minute)');
  }
}
