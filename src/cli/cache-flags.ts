// The flags that point a client (mount, warm-up, the CSI node plugin) at the cluster cache, shared so the
// three commands spell and parse them the same way (src/config/cache.ts validates what they build).
import { InvalidArgumentError, type Command } from 'commander';
import type { z } from 'zod';
import type { cacheClientSchema } from '../config/cache';
import type { OptionFlags } from '../config/parse';
import { parseByteSize } from '../config/size';
import { parsePeerList } from '../cache/membership/static';

/** The cache flags as commander parses them. */
export interface CacheClientFlags {
  cachePeers?: string[];
  cacheKubernetesService?: string;
  cacheKubernetesNamespace?: string;
  cacheTokenFile?: string;
  cacheBlockSize?: number;
  cacheMetricsSocket?: string;
}

/** Wraps a parser's Error into the InvalidArgumentError commander reports with the flag's name. */
export function flagParser<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

/** The commander parser of a whole number of something (an integer flag: a count, milliseconds). */
export function wholeNumber(value: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
}

/** --cache-peers: the cache servers' URLs in canonical form, without repeats; a list that names none is refused. */
export function parseCachePeers(value: string): string[] {
  const peers = parsePeerList(value);
  if (peers.length === 0) throw new Error('--cache-peers lists no cache server: give http://HOST:PORT,...');
  return peers;
}

/** Adds --cache-peers, --cache-kubernetes-service, --cache-kubernetes-namespace, --cache-token-file, --cache-block-size, --cache-metrics-socket. */
export function addCacheClientOptions(command: Command): Command {
  return command
    .option('--cache-peers <urls>', 'cache servers, comma-separated base URLs (http://host:7070,...)', flagParser(parseCachePeers))
    .option('--cache-kubernetes-service <name>', "the cache's headless Service: discover the cache servers from its EndpointSlices")
    .option('--cache-kubernetes-namespace <namespace>', "the Service's namespace (default: POD_NAMESPACE, else the pod's own)")
    .option('--cache-token-file <file>', 'file holding the cluster token (required with a cache)')
    .option('--cache-block-size <size>', 'block size of the cache servers (default: 4MiB)', flagParser(parseByteSize))
    .option('--cache-metrics-socket <path>', "granary mount: serve the mount's cluster-cache counters (GET /metrics) on a unix socket there, for the CSI node plugin to collect (default: none)");
}

/** The flag of each option of the cache section (`section`.peers...), for the configuration's messages. */
export function cacheClientFlags(section = 'cache'): OptionFlags {
  return {
    [`${section}.peers`]: '--cache-peers',
    [`${section}.kubernetesService`]: '--cache-kubernetes-service',
    [`${section}.kubernetesNamespace`]: '--cache-kubernetes-namespace',
    [`${section}.tokenFile`]: '--cache-token-file',
    [`${section}.blockSize`]: '--cache-block-size',
    [`${section}.metricsSocket`]: '--cache-metrics-socket',
  };
}

/** The cache section of a config built from the flags. */
export function cacheClientInput(flags: CacheClientFlags): z.input<typeof cacheClientSchema> {
  return {
    peers: flags.cachePeers ?? [],
    ...(flags.cacheKubernetesService !== undefined && { kubernetesService: flags.cacheKubernetesService }),
    ...(flags.cacheKubernetesNamespace !== undefined && { kubernetesNamespace: flags.cacheKubernetesNamespace }),
    ...(flags.cacheTokenFile !== undefined && { tokenFile: flags.cacheTokenFile }),
    ...(flags.cacheBlockSize !== undefined && { blockSize: flags.cacheBlockSize }),
    ...(flags.cacheMetricsSocket !== undefined && { metricsSocket: flags.cacheMetricsSocket }),
  };
}
