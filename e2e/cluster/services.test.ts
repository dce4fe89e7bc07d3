import { type EndpointSliceObject, type ServiceObject, serviceRoutes } from './services';

const NODE = 'granary-node';
const service = (internalTrafficPolicy: 'Cluster' | 'Local', spec: Partial<ServiceObject['spec']> = {}): ServiceObject => ({
  metadata: { namespace: 'granary', name: 'granary-s3' },
  spec: { type: 'ClusterIP', clusterIP: '10.213.1.7', internalTrafficPolicy, ports: [{ name: 's3', port: 9000, protocol: 'TCP' }], ...spec },
});
const endpoint = (address: string, nodeName: string, ready = true) => ({ addresses: [address], nodeName, conditions: { ready } });
// The EndpointSlice controller writes the pods' resolved targetPort (the named port s3) under the Service port's name.
const slice = (endpoints: EndpointSliceObject['endpoints'], ports = [{ name: 's3', port: 9000, protocol: 'TCP' }]): EndpointSliceObject =>
  ({ addressType: 'IPv4', ports, endpoints });

describe('routing a Service as kube-proxy would', () => {
  it('sends each port to the ready endpoints of the slices\' port of the same name', () => {
    const slices = [slice([endpoint('10.213.0.12', NODE), endpoint('10.213.0.13', 'other-node'), endpoint('10.213.0.14', NODE, false)])];
    expect(serviceRoutes(service('Cluster'), slices, NODE)).toEqual([{ clusterIp: '10.213.1.7', port: 9000,
      endpoints: [{ address: '10.213.0.12', port: 9000 }, { address: '10.213.0.13', port: 9000 }] }]);
  });

  it('keeps to the node\'s own endpoints under internalTrafficPolicy Local', () => {
    const slices = [slice([endpoint('10.213.0.12', NODE), endpoint('10.213.0.13', 'other-node')])];
    expect(serviceRoutes(service('Local'), slices, NODE)[0]!.endpoints).toEqual([{ address: '10.213.0.12', port: 9000 }]);
  });

  it('takes the target port from the slice, not the Service\'s port', () => {
    const slices = [slice([endpoint('10.213.0.12', NODE)], [{ name: 's3', port: 19000, protocol: 'TCP' }])];
    expect(serviceRoutes(service('Local'), slices, NODE)[0]!.endpoints).toEqual([{ address: '10.213.0.12', port: 19000 }]);
  });

  it('refuses a port whose traffic would be dropped, saying what the slices hold', () => {
    const slices = [slice([endpoint('10.213.0.13', 'other-node'), endpoint('10.213.0.14', NODE, false)])];
    expect(() => serviceRoutes(service('Local'), slices, NODE)).toThrow(
      'Service granary/granary-s3 port 9000 has no ready endpoint on node granary-node (internalTrafficPolicy Local); ' +
      'its EndpointSlices hold: 10.213.0.13 on other-node ready=true; 10.213.0.14 on granary-node ready=false');
    expect(() => serviceRoutes(service('Cluster'), [], NODE)).toThrow('its EndpointSlices hold: nothing');
  });

  it('refuses a headless Service, a Service without ports and a UDP port', () => {
    expect(() => serviceRoutes(service('Cluster', { clusterIP: 'None' }), [], NODE)).toThrow('Service granary/granary-s3 has no ClusterIP to route');
    expect(() => serviceRoutes(service('Cluster', { ports: [{ port: 53, protocol: 'UDP' }] }), [], NODE)).toThrow('port 53: only TCP is routed');
    expect(() => serviceRoutes(service('Cluster', { ports: [] }), [], NODE)).toThrow('Service granary/granary-s3 has no ports to route');
  });
});
