// The local directory that holds staging files, and the free-space floor that keeps it from filling its disk.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../../log/logger';
import { Errno } from '../errno';
import { FuseError } from '../fuse/operations';

/** Reads the bytes available to this process in the filesystem holding `dir` (statfs; exposed for testing). */
export type FreeSpace = (dir: string) => Promise<number>;

/** The real statfs(2): blocks available to unprivileged users times the block size. */
export const statfsFreeSpace: FreeSpace = async (dir) => {
  const stats = await fsp.statfs(dir);
  return stats.bavail * stats.bsize;
};

/** How long a free-space reading is trusted before statfs is asked again (ms). */
const FREE_SPACE_RECHECK_MS = 1000;

/** The staging directory of one mount: makes anonymous staging files and enforces the free-space floor. */
export class StagingDir {
  private created: Promise<void> | undefined;
  private knownFree: number | undefined;
  private checkedAt = 0;
  private spentSinceCheck = 0;

  constructor(
    readonly dir: string,
    readonly minFreeBytes: number,
    private readonly freeSpace: FreeSpace = statfsFreeSpace,
  ) {}

  /**
   * Opens a new, empty staging file. It is unlinked at once: its space returns to the disk when the handle closes,
   * even if the mount process is killed, so a crash never leaves staging files behind.
   */
  async open(): Promise<fsp.FileHandle> {
    this.created ??= fsp.mkdir(this.dir, { recursive: true, mode: 0o700 }).then(() => undefined);
    await this.created;
    const file = path.join(this.dir, `staging-${process.pid}-${randomBytes(8).toString('hex')}`);
    const handle = await fsp.open(file, 'wx+', 0o600);
    await fsp.unlink(file).catch(async (error: unknown) => {
      await handle.close();
      throw error;
    });
    return handle;
  }

  /**
   * Fails with ENOSPC (logged with the numbers) when writing `bytes` more would leave less than minFreeBytes free.
   * statfs is asked at most every FREE_SPACE_RECHECK_MS, or sooner when the bytes spent since could reach the floor.
   */
  async reserve(bytes: number, key: string, logger: Logger): Promise<void> {
    const stale = Date.now() - this.checkedAt > FREE_SPACE_RECHECK_MS;
    if (this.knownFree === undefined || stale || this.knownFree - this.spentSinceCheck - bytes < this.minFreeBytes) {
      this.created ??= fsp.mkdir(this.dir, { recursive: true, mode: 0o700 }).then(() => undefined);
      await this.created;
      this.knownFree = await this.freeSpace(this.dir);
      this.checkedAt = Date.now();
      this.spentSinceCheck = 0;
    }
    if (this.knownFree - this.spentSinceCheck - bytes < this.minFreeBytes) {
      const free = this.knownFree - this.spentSinceCheck;
      logger.error(
        { key, stagingDir: this.dir, freeBytes: free, neededBytes: bytes, minFreeBytes: this.minFreeBytes },
        'staging directory full: refusing the write with ENOSPC; free space there, point stagingDir at a larger disk, or lower stagingMinFreeBytes',
      );
      throw new FuseError(Errno.ENOSPC, `staging directory ${this.dir} has ${free} bytes free, below the floor of ${this.minFreeBytes}`);
    }
    this.spentSinceCheck += bytes;
  }
}
