// What kube-proxy would make of a ClusterIP Service on this node, read from the API server's objects. The node
// runs no kube-proxy (network.ts routes the `kubernetes` Service itself); a test that needs pods to reach a
// Service's ClusterIP has the harness route it from these.

/** A Service as the routing reads it. */
export interface ServiceObject {
  metadata: { namespace: string; name: string };
  spec: {
    type?: string;
    clusterIP?: string;
    internalTrafficPolicy?: 'Cluster' | 'Local';
    ports?: { name?: string; port: number; protocol?: string }[];
  };
}

/** An EndpointSlice as the routing reads it (the EndpointSlice controller's, from the Service's selector). */
export interface EndpointSliceObject {
  addressType?: string;
  ports?: { name?: string; port?: number; protocol?: string }[] | null;
  endpoints?: { addresses: string[]; nodeName?: string; conditions?: { ready?: boolean } }[] | null;
}

/** One port of a Service, routed: its ClusterIP and port to the endpoints traffic may reach. */
export interface ServiceRoute {
  readonly clusterIp: string;
  readonly port: number;
  readonly endpoints: readonly { readonly address: string; readonly port: number }[];
}

/**
 * The routes of a ClusterIP Service's TCP ports as kube-proxy computes them for pods on `nodeName`: each
 * port to the ready IPv4 endpoints of the slices' port of the same name (which carries the resolved
 * targetPort), only those on `nodeName` when internalTrafficPolicy is Local. A port with no endpoint
 * left is an error naming the Service, the port and what the slices hold, since its traffic would be
 * dropped.
 */
export function serviceRoutes(service: ServiceObject, slices: readonly EndpointSliceObject[], nodeName: string): ServiceRoute[] {
  const name = `${service.metadata.namespace}/${service.metadata.name}`;
  const clusterIp = service.spec.clusterIP;
  if ((service.spec.type ?? 'ClusterIP') !== 'ClusterIP' || !clusterIp || clusterIp === 'None') {
    throw new Error(`Service ${name} has no ClusterIP to route (type ${service.spec.type ?? 'ClusterIP'}, clusterIP ${clusterIp ?? 'unset'})`);
  }
  if ((service.spec.ports ?? []).length === 0) throw new Error(`Service ${name} has no ports to route`);
  const local = service.spec.internalTrafficPolicy === 'Local';
  return service.spec.ports!.map((servicePort) => {
    if ((servicePort.protocol ?? 'TCP') !== 'TCP') throw new Error(`Service ${name} port ${servicePort.port}: only TCP is routed`);
    const endpoints = slices.filter((slice) => (slice.addressType ?? 'IPv4') === 'IPv4').flatMap((slice) => {
      const port = (slice.ports ?? []).find((candidate) => (candidate.name ?? '') === (servicePort.name ?? ''))?.port;
      if (port === undefined) return [];
      return (slice.endpoints ?? [])
        .filter((endpoint) => endpoint.conditions?.ready !== false && (!local || endpoint.nodeName === nodeName))
        .flatMap((endpoint) => endpoint.addresses.map((address) => ({ address, port })));
    });
    if (endpoints.length === 0) {
      const held = slices.flatMap((slice) => (slice.endpoints ?? []).map((endpoint) =>
        `${endpoint.addresses.join(',')} on ${endpoint.nodeName ?? '?'} ready=${String(endpoint.conditions?.ready ?? true)}`));
      throw new Error(`Service ${name} port ${servicePort.port} has no ready endpoint${local ? ` on node ${nodeName} (internalTrafficPolicy Local)` : ''}; ` +
        `its EndpointSlices hold: ${held.length > 0 ? held.join('; ') : 'nothing'}`);
    }
    return { clusterIp, port: servicePort.port, endpoints };
  });
}
