// Where the S3 gateway reads an object's bytes: each block from its owner on the ring, exactly as a mount does
// (the owner's RAM, its disk, or one origin fill), except that the blocks this server owns come from its own store
// without a round trip through its own port. With no ring (no --peers, no --kubernetes-service) this server owns
// every block: the gateway is then a one-node cache. An owner that fails is reported and the origin read instead.
import type { BlockFetcher } from '../../blocks/block-fetcher';
import type { ByteRange } from '../../blocks/block-math';
import type { Logger } from '../../log/logger';
import { blockRange, type BlockRef } from '../block';
import type { BlockStore } from '../block-store';
import { ClusterFetcher, type OwnerDirectory } from '../cluster-fetcher';
import type { PeerClient } from '../peer-client';
import type { PeerPicker } from '../ring';

/** The ring as the gateway sees it: undefined before (or without) a membership. */
export type RingOf = () => Pick<OwnerDirectory, 'picker' | 'reportFailure' | 'reportSlow'> | undefined;

/** What a RingFetcher reads with. */
export interface RingFetcherOptions {
  store: Pick<BlockStore, 'read'>;
  client: Pick<PeerClient, 'fetchBlock'>;
  ring: RingOf;
  /** Whether a ring member's URL is this server (memoised by the caller or here: see isSelfMemo). */
  isSelf: (url: string) => Promise<boolean>;
  /** The object store of the bucket: where an owner's failure falls back to. */
  origin: BlockFetcher;
  endpoint: string;
  bucket: string;
  blockSize: number;
  logger: Logger;
}

/** The owner name that stands for this server when there is no ring. */
const SELF = 'self:';

const SELF_ONLY: PeerPicker = { pickPeer: () => SELF, members: [{ url: SELF, weight: 1 }] };

/** Reads block ranges of one bucket through the ring, this server's own blocks from its store. */
export function ringFetcher(options: RingFetcherOptions): BlockFetcher {
  const { store, client, ring, isSelf } = options;
  const directory: OwnerDirectory = {
    // A ring with no member ready (this server's first probes still out) is read as no ring: from this server's store.
    picker: () => {
      const picker = ring()?.picker();
      return picker && picker.members.length > 0 ? picker : SELF_ONLY;
    },
    reportFailure: (url) => ring()?.reportFailure(url),
    reportSlow: (url) => ring()?.reportSlow(url),
  };
  return new ClusterFetcher({
    directory,
    client: {
      async fetchBlock(owner: string, ref: BlockRef, range: ByteRange, fetchOptions) {
        if (owner !== SELF && !(await isSelf(owner))) return client.fetchBlock(owner, ref, range, fetchOptions);
        const { data, servedFrom } = await store.read(ref);
        const block = blockRange(ref);
        return { data: data.subarray(range.start - block.start, range.end - block.start), servedFrom };
      },
    },
    origin: options.origin,
    endpoint: options.endpoint,
    bucket: options.bucket,
    blockSize: options.blockSize,
    logger: options.logger,
  });
}

/** `check` with its answer kept per URL (ring members change rarely; their addresses never). */
export function isSelfMemo(check: (url: string) => Promise<boolean>): (url: string) => Promise<boolean> {
  const known = new Map<string, Promise<boolean>>();
  return (url) => {
    let answer = known.get(url);
    if (!answer) known.set(url, (answer = check(url).catch(() => false)));
    return answer;
  };
}
