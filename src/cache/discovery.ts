// Opens the ring membership a configuration names: a static peer list, or the EndpointSlices of the
// cache's headless Service. Mounts, warm-up and the cache server itself all come through here.
import type { Logger } from '../log/logger';
import type { Membership, Probe } from './membership/membership';
import { staticMembership } from './membership/static';

/** Where the members come from (the fields shared by the server's and the clients' configurations). */
export interface DiscoverySettings {
  peers: string[];
  kubernetesService?: string | undefined;
  kubernetesNamespace?: string | undefined;
}

/**
 * The membership `settings` name, probing each candidate with `probe`; undefined when they name none. The
 * Kubernetes client (an ES module) is loaded only when Kubernetes discovery is asked for.
 */
export async function openMembership(settings: DiscoverySettings, probe: Probe, logger: Logger): Promise<Membership | undefined> {
  if (settings.kubernetesService) {
    const { kubernetesMembership, namespaceFromEnvironment } = await import('./membership/kubernetes');
    const namespace = settings.kubernetesNamespace ?? namespaceFromEnvironment(process.env);
    return kubernetesMembership({ service: settings.kubernetesService, namespace }, probe, logger);
  }
  if (settings.peers.length > 0) return staticMembership(settings.peers, probe, logger);
  return undefined;
}
