// The kernel's readahead for one FUSE mount. The kernel caps a FUSE mount's readahead at its bdi's
// read_ahead_kb (128 KiB when the mount is made) whatever FUSE_INIT's max_readahead says: INIT can only
// lower it. Raising it is a write to sysfs once the mount exists.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../../log/logger';
import { findMount, readMountInfo, type MountEntry } from '../../system/mountinfo';

/** Where the kernel exposes backing-device settings, one directory per `major:minor`. */
export const SYSFS_BDI_ROOT = '/sys/class/bdi';

/** The outside world raiseKernelReadahead touches, exposed for testing. */
export interface KernelReadaheadDependencies {
  /** Current mounts (default /proc/self/mountinfo). */
  mounts?: () => MountEntry[];
  /** Default SYSFS_BDI_ROOT. */
  sysfsRoot?: string;
}

/**
 * Sets the kernel readahead of the mount at `mountpoint` to `bytes` (rounded up to KiB) through
 * /sys/class/bdi/<major:minor>/read_ahead_kb, and returns the value now in effect in bytes. Never throws:
 * without the right (no root, read-only /sys in a container) the mount keeps working with the kernel's
 * 128 KiB, and the warning says so. The device comes from mountinfo, not stat(2), which from inside
 * the mount process would be a request to itself.
 */
export function raiseKernelReadahead(mountpoint: string, bytes: number, logger: Logger, dependencies: KernelReadaheadDependencies = {}): number | undefined {
  const mount = findMount((dependencies.mounts ?? readMountInfo)(), mountpoint);
  if (!mount) {
    logger.warn({ mountpoint }, 'kernel readahead not raised: the mount is not in mountinfo');
    return undefined;
  }
  const file = path.join(dependencies.sysfsRoot ?? SYSFS_BDI_ROOT, mount.device, 'read_ahead_kb');
  const kib = Math.ceil(bytes / 1024);
  try {
    const before = Number(fs.readFileSync(file, 'utf8').trim());
    if (before !== kib) fs.writeFileSync(file, `${kib}\n`);
    const now = Number(fs.readFileSync(file, 'utf8').trim());
    logger.info({ mountpoint, device: mount.device, readAheadKiB: now, previousKiB: before }, 'kernel readahead set');
    return now * 1024;
  } catch (error) {
    logger.warn({ mountpoint, file, err: error }, `kernel readahead not raised (sequential reads through this mount are slower): writing ${file} needs root and a writable /sys`);
    return undefined;
  }
}
