// The block size: one fixed-size, aligned unit of an object that the mount's block cache, the cluster cache's keys
// and every fill share, and its limits, defined once for every role that takes a block size.
import { z } from 'zod';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Default block size: 4 MiB. Large enough that one GET amortises S3's first-byte latency, small enough that a
 * random reader does not pay for much it will not read.
 */
export const DEFAULT_BLOCK_SIZE = 4 * MiB;

/**
 * Smallest block size any role accepts: 64 KiB (below that, per-block requests and bookkeeping cost more than the
 * bytes they move).
 */
export const MIN_BLOCK_SIZE = 64 * KiB;

/**
 * Largest block size any role accepts: 64 MiB. Every block is held whole in RAM while it is fetched or served
 * (a mount keeps up to maxConcurrentFetches of them in flight, a cache server one per fill), so 64 MiB already
 * means 2 GiB in flight for a mount's 32 fetches; a cache server refuses any other size (400), and the mount's
 * block size is the cache's when it reads through one.
 */
export const MAX_BLOCK_SIZE = 64 * MiB;

/** The limits in words, for messages: "64 KiB to 64 MiB". */
export const BLOCK_SIZE_RANGE = `${MIN_BLOCK_SIZE / KiB} KiB to ${MAX_BLOCK_SIZE / MiB} MiB`;

/**
 * A block size field of a configuration: whole bytes from MIN_BLOCK_SIZE to MAX_BLOCK_SIZE, DEFAULT_BLOCK_SIZE
 * unless given. `what` names the flag or field in the message ("--cache-block-size must be from 64 KiB to 64 MiB").
 */
export function blockSizeSchema(what: string) {
  const message = `${what} must be from ${BLOCK_SIZE_RANGE}`;
  return z.number().int(message).min(MIN_BLOCK_SIZE, message).max(MAX_BLOCK_SIZE, message).default(DEFAULT_BLOCK_SIZE);
}
