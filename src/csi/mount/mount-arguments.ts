// The `granary mount` flags of one staged volume: the node's cluster cache (unless the volume turns it off)
// and the StorageClass's mount options. They go on argv, which any process on the node can read in
// /proc/PID/cmdline, so nothing here may be a secret: URLs, names, a token file's path, numbers.
import { cacheEnabled, type CacheClientConfig } from '../../config/cache';
import { CsiError } from '../errors';
import { parseMountOptions, VOLUME_CONTEXT } from '../parameters';

/** The `--cache-*` flags of `granary mount` that point a mount at the cluster cache `config` names; none when it names no cache. */
export function cacheFlags(config: CacheClientConfig): string[] {
  if (!cacheEnabled(config)) return [];
  return [
    ...(config.peers.length > 0 ? ['--cache-peers', config.peers.join(',')] : []),
    ...(config.kubernetesService !== undefined ? ['--cache-kubernetes-service', config.kubernetesService] : []),
    ...(config.kubernetesNamespace !== undefined ? ['--cache-kubernetes-namespace', config.kubernetesNamespace] : []),
    ...(config.tokenFile !== undefined ? ['--cache-token-file', config.tokenFile] : []),
    '--cache-block-size',
    String(config.blockSize),
  ];
}

/** Whether the volume reads through the cache: volume_context `cache` is "true" (or absent, a static PV) or "false". */
function volumeUsesCache(context: Record<string, string> | undefined): boolean {
  const value = context?.[VOLUME_CONTEXT.cache];
  if (value === undefined || value === 'true') return true;
  if (value === 'false') return false;
  // Static PVs carry volumeAttributes nobody validated: refuse rather than guess.
  throw new CsiError('INVALID_ARGUMENT', `volume_context ${VOLUME_CONTEXT.cache} must be true or false, not ${JSON.stringify(value)}`);
}

/**
 * The flags `granary mount` gets for a volume: `nodeCacheFlags` unless volume_context `cache` is "false",
 * then each volume_context mountOptions entry as the flag of the same name (`uid=1000` → `--uid 1000`).
 * Throws INVALID_ARGUMENT for an unknown option or a bad value.
 */
export function mountArguments(volumeContext: Record<string, string> | undefined, nodeCacheFlags: readonly string[]): string[] {
  const cache = volumeUsesCache(volumeContext) ? nodeCacheFlags : [];
  const text = volumeContext?.[VOLUME_CONTEXT.mountOptions]?.trim();
  const options = text ? parseMountOptions(text, `volume_context ${VOLUME_CONTEXT.mountOptions}`) : [];
  return [...cache, ...options.flatMap((option) => [`--${option.name}`, option.value])];
}
