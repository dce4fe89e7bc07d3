import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, type V1EndpointSlice } from '@kubernetes/client-node';
import pino from 'pino';
import type { PeerPicker } from '../ring';
import { candidateUrls, kubernetesMembership, namespaceFromEnvironment, SERVICE_ACCOUNT_NAMESPACE_FILE, type KubernetesMembershipOptions } from './kubernetes';
import { EndpointNotReady, type Membership, type Probe } from './membership';

// @kubernetes/client-node 1.x is an ES module: Node (>= 20.19) require()s it, jest's module registry cannot,
// so the tests hand jest the module as Node itself loads it.
jest.mock('@kubernetes/client-node', () => process.getBuiltinModule('node:module').createRequire(__filename)('@kubernetes/client-node'));

const GiB = 2 ** 30;
const NAMESPACE = 'granary';
const SERVICE = 'granary-cache';
const SLICES_PATH = `/apis/discovery.k8s.io/v1/namespaces/${NAMESPACE}/endpointslices`;

interface EndpointSpec {
  address: string;
  ready?: boolean;
}

function slice(name: string, endpoints: EndpointSpec[], ports: { name?: string; port?: number }[] = [{ name: 'http', port: 8470 }]): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: NAMESPACE, labels: { 'kubernetes.io/service-name': SERVICE } },
    addressType: endpoints.some((e) => e.address.includes(':')) ? 'IPv6' : 'IPv4',
    endpoints: endpoints.map((e) => ({ addresses: [e.address], conditions: e.ready === undefined ? {} : { ready: e.ready } })),
    ports,
  };
}

/**
 * A stand-in for the Kubernetes API server: answers the EndpointSlice list of one namespace and streams
 * watch events (newline-delimited JSON) to every open watch.
 */
class FakeApiServer {
  readonly slices = new Map<string, V1EndpointSlice>();
  readonly requests: URL[] = [];
  private readonly watches = new Set<http.ServerResponse>();
  private resourceVersion = 1;
  private server: http.Server | undefined;
  port = 0;

  async start(port = 0): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Closes the server and every connection, open watches included. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeAllConnections();
    this.watches.clear();
    await closed;
  }

  get openWatches(): number {
    return this.watches.size;
  }

  /** Changes the stored slices and tells every open watch. */
  send(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: V1EndpointSlice): void {
    const name = object.metadata?.name ?? '';
    const stamped = { ...object, metadata: { ...object.metadata, resourceVersion: String(++this.resourceVersion) } };
    if (type === 'DELETED') this.slices.delete(name);
    else this.slices.set(name, stamped);
    this.broadcast({ type, object: stamped });
  }

  broadcast(event: unknown): void {
    for (const watch of this.watches) watch.write(`${JSON.stringify(event)}\n`);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    this.requests.push(url);
    if (req.method !== 'GET' || url.pathname !== SLICES_PATH) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404, message: `no route ${url.pathname}` }));
      return;
    }
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      this.watches.add(res);
      res.on('close', () => this.watches.delete(res));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSliceList',
        metadata: { resourceVersion: String(this.resourceVersion) },
        items: [...this.slices.values()],
      }),
    );
  }
}

function kubeConfigFor(port: number): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'cache', token: 'service-account-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'cache' }],
    currentContext: 'fake',
  });
  return kubeConfig;
}

async function eventually(check: () => void, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

function urls(picker: PeerPicker): string[] {
  return picker.members.map((member) => member.url);
}

interface LogLine {
  level: number;
  msg: string;
  reason?: string;
}

const FAST: KubernetesMembershipOptions = { intervalMs: 50, probeTimeoutMs: 1000, retryAfterFailureMs: 50, backoffMs: 20, maxBackoffMs: 100 };

describe('kubernetesMembership', () => {
  let api: FakeApiServer;
  let membership: Membership | undefined;
  let capacities: Map<string, number>;
  let logs: LogLine[];
  const probe: Probe = async (url) => {
    const capacityBytes = capacities.get(url);
    if (capacityBytes === undefined) throw new Error(`connect ECONNREFUSED ${url}`);
    return { capacityBytes };
  };
  const logger = () => pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });

  function open(options: KubernetesMembershipOptions = {}): Membership {
    membership = kubernetesMembership({ service: SERVICE, namespace: NAMESPACE }, probe, logger(), { ...FAST, kubeConfig: kubeConfigFor(api.port), ...options });
    return membership;
  }

  beforeEach(async () => {
    api = new FakeApiServer();
    await api.start();
    capacities = new Map();
    logs = [];
    membership = undefined;
  });

  afterEach(async () => {
    membership?.close();
    await api.stop();
  });

  it('starts with the ready endpoints of the listed slices, weighted by the capacity each reports', async () => {
    api.slices.set('a', slice('a', [{ address: '10.0.0.1', ready: true }, { address: '10.0.0.2', ready: false }, { address: '10.0.0.3' }]));
    api.slices.set('b', slice('b', [{ address: '10.0.1.1', ready: true }], [{ name: 'metrics', port: 9090 }, { name: 'http', port: 8471 }]));
    for (const url of ['http://10.0.0.1:8470', 'http://10.0.0.2:8470', 'http://10.0.0.3:8470']) capacities.set(url, 8 * GiB);
    capacities.set('http://10.0.1.1:8471', 2 * GiB);

    const members = open();
    await members.ready();

    expect(members.picker().members).toEqual([
      { url: 'http://10.0.0.1:8470', weight: 8 },
      { url: 'http://10.0.0.3:8470', weight: 8 },
      { url: 'http://10.0.1.1:8471', weight: 2 },
    ]);
    const list = api.requests.find((url) => url.searchParams.get('watch') === null);
    expect(list?.pathname).toBe(SLICES_PATH);
    expect(list?.searchParams.get('labelSelector')).toBe(`kubernetes.io/service-name=${SERVICE}`);
  });

  it('reports the probed candidates and, as not ready, the endpoints Kubernetes marks not ready', async () => {
    api.slices.set('a', slice('a', [{ address: '10.0.0.1', ready: true }, { address: '10.0.0.2', ready: false }, { address: '10.0.0.3' }]));
    capacities.set('http://10.0.0.1:8470', 8 * GiB);
    const members = open();
    await members.ready();
    const readiness = members.readiness();
    expect(readiness.map(({ url, ready }) => ({ url, ready }))).toEqual([
      { url: 'http://10.0.0.1:8470', ready: true },
      { url: 'http://10.0.0.3:8470', ready: false },
      { url: 'http://10.0.0.2:8470', ready: false },
    ]);
    expect(readiness[1]?.failure).toEqual(new Error('connect ECONNREFUSED http://10.0.0.3:8470'));
    expect(readiness[2]?.failure).toBeInstanceOf(EndpointNotReady);
    expect((readiness[2]?.failure as Error).message).toMatch(new RegExp(`not ready in the Service ${SERVICE}`));
  });

  it('follows MODIFIED, ADDED and DELETED events: endpoints that stop being ready leave, new ready ones join', async () => {
    api.slices.set('a', slice('a', [{ address: '10.0.0.1', ready: true }, { address: '10.0.0.2', ready: true }]));
    for (const host of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.2.1']) capacities.set(`http://${host}:8470`, 4 * GiB);
    const members = open();
    const changes: string[][] = [];
    members.onChange((picker) => changes.push(urls(picker)));
    await members.ready();
    expect(urls(members.picker())).toEqual(['http://10.0.0.1:8470', 'http://10.0.0.2:8470']);
    await eventually(() => expect(api.openWatches).toBe(1));
    const watch = api.requests.find((url) => url.searchParams.get('watch') === 'true');
    expect(watch?.searchParams.get('labelSelector')).toBe(`kubernetes.io/service-name=${SERVICE}`);
    expect(watch?.searchParams.get('resourceVersion')).toBe('1');

    api.send('MODIFIED', slice('a', [{ address: '10.0.0.1', ready: true }, { address: '10.0.0.2', ready: false }, { address: '10.0.0.3', ready: true }]));
    await eventually(() => expect(urls(members.picker())).toEqual(['http://10.0.0.1:8470', 'http://10.0.0.3:8470']));

    api.send('ADDED', slice('b', [{ address: '10.0.2.1', ready: true }]));
    await eventually(() => expect(urls(members.picker())).toEqual(['http://10.0.0.1:8470', 'http://10.0.0.3:8470', 'http://10.0.2.1:8470']));

    api.send('DELETED', slice('a', []));
    await eventually(() => expect(urls(members.picker())).toEqual(['http://10.0.2.1:8470']));
    expect(changes.at(-1)).toEqual(['http://10.0.2.1:8470']);
  });

  it('keeps the last ring while the API server is gone, then follows it again when it is back', async () => {
    api.slices.set('a', slice('a', [{ address: '10.0.0.1', ready: true }, { address: '10.0.0.2', ready: true }]));
    capacities.set('http://10.0.0.1:8470', 4 * GiB).set('http://10.0.0.2:8470', 4 * GiB).set('http://10.0.0.3:8470', 4 * GiB);
    const members = open();
    await members.ready();
    await eventually(() => expect(api.openWatches).toBe(1));
    const before = members.picker();

    const port = api.port;
    const saved = [...api.slices.values()];
    await api.stop();
    const failures = () => logs.filter((line) => line.level === 40 && line.msg.startsWith('cannot list or watch the cache EndpointSlices'));
    await eventually(() => expect(failures().length).toBeGreaterThanOrEqual(3));
    expect(failures().at(-1)?.reason).toMatch(/ECONNREFUSED/);
    expect(members.picker()).toBe(before);
    expect(urls(members.picker())).toEqual(['http://10.0.0.1:8470', 'http://10.0.0.2:8470']);

    api = new FakeApiServer();
    for (const s of saved) api.slices.set(s.metadata?.name ?? '', s);
    api.slices.set('a', slice('a', [{ address: '10.0.0.2', ready: true }, { address: '10.0.0.3', ready: true }]));
    await api.start(port);
    await eventually(() => expect(urls(members.picker())).toEqual(['http://10.0.0.2:8470', 'http://10.0.0.3:8470']));
  });

  it('lists afresh when the watch says its resourceVersion expired (410 Gone)', async () => {
    api.slices.set('a', slice('a', [{ address: '10.0.0.1', ready: true }]));
    capacities.set('http://10.0.0.1:8470', 4 * GiB).set('http://10.0.0.2:8470', 4 * GiB);
    const members = open();
    await members.ready();
    await eventually(() => expect(api.openWatches).toBe(1));
    const lists = () => api.requests.filter((url) => url.searchParams.get('watch') === null).length;
    expect(lists()).toBe(1);

    // A change the watch never delivers: only a new list can see it.
    api.slices.set('a', slice('a', [{ address: '10.0.0.2', ready: true }]));
    api.broadcast({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version' } });

    await eventually(() => expect(urls(members.picker())).toEqual(['http://10.0.0.2:8470']));
    expect(lists()).toBe(2);
  });

  it('is ready, with no members, when the API server cannot be reached at start', async () => {
    const port = api.port;
    await api.stop();
    const members = kubernetesMembership({ service: SERVICE, namespace: NAMESPACE }, probe, logger(), { ...FAST, kubeConfig: kubeConfigFor(port) });
    membership = members;
    await members.ready();
    expect(members.picker().members).toEqual([]);
    expect(logs.some((line) => line.level === 40)).toBe(true);
  });

  it('passes a reader-reported failure to the prober: the server leaves now and rejoins once it answers', async () => {
    api.slices.set('a', slice('a', [{ address: '10.0.0.1', ready: true }, { address: '10.0.0.2', ready: true }]));
    capacities.set('http://10.0.0.1:8470', 4 * GiB).set('http://10.0.0.2:8470', 4 * GiB);
    const members = open({ intervalMs: 60_000 });
    await members.ready();

    members.reportFailure('http://10.0.0.2:8470');
    expect(urls(members.picker())).toEqual(['http://10.0.0.1:8470']);
    await eventually(() => expect(urls(members.picker())).toEqual(['http://10.0.0.1:8470', 'http://10.0.0.2:8470']));
  });

  it('rejects a Service or namespace that Kubernetes would not accept', () => {
    expect(() => kubernetesMembership({ service: 'Cache_Servers', namespace: NAMESPACE }, probe, logger(), { kubeConfig: kubeConfigFor(1) })).toThrow(/not a valid Kubernetes Service name/);
    expect(() => kubernetesMembership({ service: SERVICE, namespace: 'a/b' }, probe, logger(), { kubeConfig: kubeConfigFor(1) })).toThrow(/not a valid Kubernetes namespace/);
    expect(() => kubernetesMembership({ service: SERVICE, namespace: NAMESPACE, port: 70_000 }, probe, logger(), { kubeConfig: kubeConfigFor(1) })).toThrow(/not a TCP port/);
  });
});

describe('candidateUrls', () => {
  it('takes the port named http, else the first port, else the given port, and skips slices with none', () => {
    const slices = [
      slice('named', [{ address: '10.0.0.1' }], [{ name: 'metrics', port: 9090 }, { name: 'http', port: 8470 }]),
      slice('first', [{ address: '10.0.0.2' }], [{ name: 'cache', port: 8480 }]),
      slice('none', [{ address: '10.0.0.3' }], []),
    ];
    expect(candidateUrls(slices, {})).toEqual(['http://10.0.0.1:8470', 'http://10.0.0.2:8480']);
    expect(candidateUrls(slices, { port: 9000, scheme: 'https' })).toEqual(['https://10.0.0.1:8470', 'https://10.0.0.2:8480', 'https://10.0.0.3:9000']);
  });

  it('brackets IPv6 addresses, leaves out endpoints that are not ready and lists each URL once', () => {
    const slices = [
      slice('v6', [{ address: 'fd00::1', ready: true }, { address: 'fd00::2', ready: false }]),
      slice('v4', [{ address: '10.0.0.1' }]),
      slice('v4-again', [{ address: '10.0.0.1', ready: true }]),
    ];
    expect(candidateUrls(slices, {})).toEqual(['http://10.0.0.1:8470', 'http://[fd00::1]:8470']);
  });
});

describe('namespaceFromEnvironment', () => {
  const noFile = (path: string): string => {
    throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
  };

  it('takes POD_NAMESPACE first', () => {
    expect(namespaceFromEnvironment({ POD_NAMESPACE: ' ml-cache ' }, () => 'other\n')).toBe('ml-cache');
  });

  it("falls back to the service account's namespace file", () => {
    const read: string[] = [];
    expect(namespaceFromEnvironment({}, (path) => (read.push(path), 'granary-system\n'))).toBe('granary-system');
    expect(read).toEqual([SERVICE_ACCOUNT_NAMESPACE_FILE]);
  });

  it('tells the operator to pass the namespace when neither exists', () => {
    expect(() => namespaceFromEnvironment({ POD_NAMESPACE: '' }, noFile)).toThrow(/POD_NAMESPACE is not set .* pass --kubernetes-namespace/);
    expect(() => namespaceFromEnvironment({}, () => '  \n')).toThrow(/pass --kubernetes-namespace/);
  });
});
