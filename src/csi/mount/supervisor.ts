// What the node service asks of whoever runs the volumes' `granary mount`: a child process of the
// node plugin (mount-process.ts) or a mount Pod per volume (mount-pods.ts).
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { Logger } from '../../log/logger';
import type { StoreSettings } from '../secrets';
import type { VolumeLocation } from '../volume-id';

/** What one staged volume's mount is asked to serve. */
export interface MountRequest {
  volumeId: string;
  location: VolumeLocation;
  stagingTargetPath: string;
  readOnly: boolean;
  /** Endpoint, region and credentials: they reach the mount through its environment only. */
  settings: StoreSettings;
  /** Flags appended to `granary mount SOURCE DIR [--read-only]` (cache, mount options; see mount-arguments.ts): never secrets, argv is world-readable. */
  flags: readonly string[];
}

/** A running mount as its supervisor knows it. */
export interface MountRecord {
  volumeId: string;
  stagingTargetPath: string;
  readOnly: boolean;
  /** Where an operator reads the mount's log, in words that complete "see ..." (a file, or a kubectl command). */
  logHint: string;
  /** The unix socket the mount serves its metrics on, when it has any (it reads through the cluster cache). */
  metricsSocket?: string;
}

/** Starts, watches and stops the one `granary mount` of each staged volume on this node. */
export interface MountSupervisor {
  /** Starts the volume's mount and resolves once the staging path is a live mount; on failure nothing is left running or mounted. */
  start(request: MountRequest, log: Logger): Promise<MountRecord>;
  /** Stops the volume's mount; resolves false when none was running. */
  stop(volumeId: string, log: Logger): Promise<boolean>;
  /** The volume's running mount, if this supervisor started or adopted one that is still alive. */
  describe(volumeId: string): MountRecord | undefined;
  /** Every running mount (for the node plugin's metrics). */
  list(): MountRecord[];
  /** Takes over the mounts an earlier node plugin left running and cleans up the dead ones; called once, before serving. */
  adopt(log: Logger): Promise<void>;
}

/** A short stable name for a volume's files and objects (volume IDs hold slashes and can be 128 bytes). */
export function volumeHash(volumeId: string): string {
  return createHash('sha256').update(volumeId).digest('hex').slice(0, 16);
}

/** The file name of a mount's metrics socket in its volume's state folder. */
export const METRICS_SOCKET_NAME = 'metrics.sock';

/** Whether `granary mount` flags name a cluster cache (mount-arguments.ts cacheFlags): only then has a mount counters to serve. */
export function readsThroughCache(flags: readonly string[]): boolean {
  return flags.includes('--cache-peers') || flags.includes('--cache-kubernetes-service');
}

/**
 * The unix socket a volume's mount serves its metrics on, `<stateDir>/<volume-hash>/metrics.sock`, in the volume's state
 * folder (the same host path for a mount process and a mount Pod); the mount makes it root's, mode 0600, so nothing
 * else on the node can connect to it.
 */
export function metricsSocketPath(stateDir: string, volumeId: string): string {
  return path.join(stateDir, volumeHash(volumeId), METRICS_SOCKET_NAME);
}

/** The source argument of `granary mount` for a volume location. */
export function mountSource(location: VolumeLocation): string {
  return `s3://${location.bucket}/${location.prefix}`;
}
