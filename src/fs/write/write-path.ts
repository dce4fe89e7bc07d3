// The per-mount state every write handle shares: configuration, memory budget and staging directory.
import { writePathSchema, type WritePathConfig, type WritePathConfigInput } from './config';
import { MemoryBudget } from './memory-budget';
import { PartBufferPool } from './part-pool';
import { StagingDir, statfsFreeSpace, type FreeSpace } from './staging-dir';

/** Shared by all write handles of one mount; build one per mount with createWritePath(). */
export interface WritePath {
  readonly config: WritePathConfig;
  /** Caps the bytes held in part buffers across all files of the mount. */
  readonly budget: MemoryBudget;
  /** Recycled part buffers of the streaming uploads, reserved from `budget`. */
  readonly parts: PartBufferPool;
  readonly staging: StagingDir;
}

/** Side effects createWritePath() takes as parameters, so tests can replace them. */
export interface WritePathDependencies {
  /** Free bytes in the staging directory's filesystem; statfs by default. */
  freeSpace?: FreeSpace;
}

/** Validates the configuration (filling defaults) and builds the per-mount write state; touches no disk yet. */
export function createWritePath(config: WritePathConfigInput = {}, dependencies: WritePathDependencies = {}): WritePath {
  const parsed = writePathSchema.parse(config);
  const budget = new MemoryBudget(parsed.memoryBudgetBytes);
  return {
    config: parsed,
    budget,
    // One file's pipeline (the part filling plus those uploading) recycles fully; more writers allocate.
    parts: new PartBufferPool(parsed.partSizeBytes, parsed.maxPartsInFlight + 1, budget),
    staging: new StagingDir(parsed.stagingDir, parsed.stagingMinFreeBytes, dependencies.freeSpace ?? statfsFreeSpace),
  };
}
