import * as fs from 'node:fs';
import type { VolumeUsage } from './generated/csi/v1/VolumeUsage';

/** The statfs numbers volume stats are made of. */
export type FilesystemStats = Pick<fs.StatsFs, 'bsize' | 'blocks' | 'bfree' | 'bavail' | 'files' | 'ffree'>;

/** Reads filesystem numbers of a path (fs.promises.statfs; exposed for testing). */
export type StatFilesystem = (target: string) => Promise<FilesystemStats>;

/** The real statfs(2). */
export const statFilesystem: StatFilesystem = (target) => fs.promises.statfs(target);

/**
 * Turns statfs numbers into CSI volume usage. An object store has no fixed size, so these are the
 * numbers the granary filesystem reports for its bucket (kubelet shows them as the volume's capacity).
 */
export function volumeUsage(stats: FilesystemStats): VolumeUsage[] {
  return [
    {
      unit: 'BYTES',
      total: stats.blocks * stats.bsize,
      available: stats.bavail * stats.bsize,
      used: Math.max(0, stats.blocks - stats.bfree) * stats.bsize,
    },
    { unit: 'INODES', total: stats.files, available: stats.ffree, used: Math.max(0, stats.files - stats.ffree) },
  ];
}
