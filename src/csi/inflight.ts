import { CsiError } from './errors';

/**
 * The set of volumes with an operation under way. The CSI spec lets a plugin answer ABORTED
 * when "there is already an operation pending for the specified volume"; the CO retries later.
 * That keeps two stage/unstage calls for one volume from racing over one mount.
 */
export class InFlight {
  private readonly busy = new Map<string, string>();

  /** Runs `work` while holding `key`; a second caller for the same key gets ABORTED at once. */
  async run<T>(key: string, operation: string, work: () => Promise<T>): Promise<T> {
    const holder = this.busy.get(key);
    if (holder !== undefined) {
      throw new CsiError('ABORTED', `an operation (${holder}) is already in progress for ${key}; retry when it finishes`);
    }
    this.busy.set(key, operation);
    try {
      return await work();
    } finally {
      this.busy.delete(key);
    }
  }

  /** Number of keys held now. */
  get size(): number {
    return this.busy.size;
  }
}
