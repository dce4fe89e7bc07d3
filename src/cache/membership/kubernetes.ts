// Kubernetes membership: the candidates are the ready endpoints of the cache's Service, read from its
// EndpointSlices (discovery.k8s.io/v1) with list-then-watch, and probed like any other candidates.
import { readFileSync } from 'node:fs';
import { DiscoveryV1Api, KubeConfig, Watch, type V1EndpointSlice } from '@kubernetes/client-node';
import type { Logger } from '../../log/logger';
import { backoffDelay } from '../../util/backoff';
import { sleepUnlessAborted } from '../../util/sleep';
import type { PeerPicker } from '../ring';
import { EndpointNotReady, type Membership, type PeerReadiness, type Probe } from './membership';
import { PeerProber, type PeerProberOptions } from './prober';

/** Where the cache servers are: the endpoints of `service` in `namespace`. */
export interface KubernetesTarget {
  /** The cache's Service; its EndpointSlices carry the label kubernetes.io/service-name=<service>. */
  service: string;
  namespace: string;
  /** The port for a slice that lists none (a slice's port named "http", else its first port, comes first). */
  port?: number;
  /** The scheme of the candidate URLs (default http). */
  scheme?: 'http' | 'https';
}

/** Options of kubernetesMembership: the prober's timing plus the API connection (see KUBERNETES_DEFAULTS). */
export interface KubernetesMembershipOptions extends PeerProberOptions {
  /** The API server to watch; default KubeConfig.loadFromDefault() ($KUBECONFIG, ~/.kube/config, else in-cluster). */
  kubeConfig?: KubeConfig;
  /** First wait before listing again after a failed list or watch, in milliseconds; doubles up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** How long one list request may take, in milliseconds. */
  listTimeoutMs?: number;
  /** How long the API server keeps one watch open before ending it (then the slices are listed afresh), in seconds. */
  watchTimeoutSeconds?: number;
}

/** Defaults: retry after 1 s doubling to 30 s, 10 s per list, a new watch every 5 minutes. */
export const KUBERNETES_DEFAULTS = {
  backoffMs: 1000,
  maxBackoffMs: 30_000,
  listTimeoutMs: 10_000,
  watchTimeoutSeconds: 300,
} as const;

/** Where a pod's service account token mount says which namespace the pod runs in. */
export const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** How long past its timeoutSeconds a watch may stay open before it is taken for dead. */
const WATCH_GRACE_SECONDS = 60;

/** The label every EndpointSlice of a Service carries, naming the Service. */
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * The namespace the cache servers are assumed to share with this pod: $POD_NAMESPACE, else the service
 * account's namespace file (read with `readFile`, by default from the disk). Throws an Error telling the
 * operator to pass the namespace when neither exists.
 */
export function namespaceFromEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): string {
  const fromEnv = env.POD_NAMESPACE?.trim();
  if (fromEnv) return fromEnv;
  let fromFile = '';
  try {
    fromFile = readFile(SERVICE_ACCOUNT_NAMESPACE_FILE).trim();
  } catch {
    // Not in a pod (or no service account token mounted): fall through to the error below.
  }
  if (fromFile !== '') return fromFile;
  throw new Error(
    `cannot tell which namespace the cache servers are in: POD_NAMESPACE is not set and ${SERVICE_ACCOUNT_NAMESPACE_FILE} cannot be read (not running in a pod?); pass --kubernetes-namespace (cache serve) or --cache-kubernetes-namespace (mount, warmup, csi)`,
  );
}

/**
 * The candidate URLs of `slices`: `scheme://address:port` for every address of every endpoint whose
 * `conditions.ready` is not false, sorted and without duplicates. IPv6 addresses are bracketed; a slice
 * with no port (and no target.port) contributes nothing.
 */
export function candidateUrls(slices: Iterable<V1EndpointSlice>, target: Pick<KubernetesTarget, 'port' | 'scheme'>): string[] {
  return endpointUrls(slices, target, true);
}

/** The URLs of the endpoints `slices` mark not ready (`conditions.ready` false), in candidateUrls' form. */
export function notReadyUrls(slices: Iterable<V1EndpointSlice>, target: Pick<KubernetesTarget, 'port' | 'scheme'>): string[] {
  return endpointUrls(slices, target, false);
}

function endpointUrls(slices: Iterable<V1EndpointSlice>, target: Pick<KubernetesTarget, 'port' | 'scheme'>, ready: boolean): string[] {
  const urls = new Set<string>();
  for (const slice of slices) {
    const ports = slice.ports ?? [];
    const port = ports.find((p) => p.name === 'http' && p.port !== undefined)?.port ?? ports.find((p) => p.port !== undefined)?.port ?? target.port;
    if (port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      if ((endpoint.conditions?.ready !== false) !== ready) continue;
      for (const address of endpoint.addresses ?? []) {
        const host = address.includes(':') ? `[${address}]` : address;
        urls.add(`${target.scheme ?? 'http'}://${host}:${port}`);
      }
    }
  }
  return [...urls].sort();
}

/**
 * The membership of the cache servers behind a Kubernetes Service: its EndpointSlices are listed then
 * watched (listed again after every error, with backoff), and their ready endpoints are probed. While the
 * API server is unreachable the last candidates are kept: the ring never empties because the API is down.
 * Needs RBAC `list` and `watch` on `endpointslices` (API group discovery.k8s.io) in the namespace.
 */
export function kubernetesMembership(target: KubernetesTarget, probe: Probe, logger: Logger, options: KubernetesMembershipOptions = {}): Membership {
  checkTarget(target);
  const kubeConfig = options.kubeConfig ?? defaultKubeConfig();
  return new EndpointSliceMembership(target, kubeConfig, new PeerProber(probe, logger, options), logger, {
    backoffMs: options.backoffMs ?? KUBERNETES_DEFAULTS.backoffMs,
    maxBackoffMs: options.maxBackoffMs ?? KUBERNETES_DEFAULTS.maxBackoffMs,
    listTimeoutMs: options.listTimeoutMs ?? KUBERNETES_DEFAULTS.listTimeoutMs,
    watchTimeoutSeconds: options.watchTimeoutSeconds ?? KUBERNETES_DEFAULTS.watchTimeoutSeconds,
  });
}

type Timing = { -readonly [K in keyof typeof KUBERNETES_DEFAULTS]: number };

/** How a watch ended: the server closed it (or it was restarted on purpose), or it failed. */
type WatchEnd = { failed: false; eventsSeen: number } | { failed: true; eventsSeen: number; error: unknown };

class EndpointSliceMembership implements Membership {
  private readonly api: DiscoveryV1Api;
  private readonly watcher: Watch;
  private readonly path: string;
  private readonly labelSelector: string;
  private slices = new Map<string, V1EndpointSlice>();
  private resourceVersion = '';
  private published: string | undefined;
  private closed = false;
  private stopWatch: (() => void) | undefined;
  /** Aborted by close(): ends the wait between lists at once. */
  private readonly closing = new AbortController();
  private readonly firstList: Promise<void>;
  private firstListSettled: () => void = () => undefined;

  constructor(
    private readonly target: KubernetesTarget,
    kubeConfig: KubeConfig,
    private readonly prober: PeerProber,
    private readonly logger: Logger,
    private readonly timing: Timing,
  ) {
    this.api = kubeConfig.makeApiClient(DiscoveryV1Api);
    this.watcher = new Watch(kubeConfig);
    this.path = `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(target.namespace)}/endpointslices`;
    this.labelSelector = `${SERVICE_NAME_LABEL}=${target.service}`;
    this.firstList = new Promise((resolve) => (this.firstListSettled = resolve));
    const server = kubeConfig.getCurrentCluster()?.server;
    this.logger.info({ service: target.service, namespace: target.namespace, apiServer: server }, 'cache membership from Kubernetes EndpointSlices');
    void this.run();
  }

  picker(): PeerPicker {
    return this.prober.picker();
  }

  async ready(): Promise<void> {
    await this.firstList;
    await this.prober.ready();
  }

  /** The probed candidates, then the endpoints the Service lists but Kubernetes marks not ready (never probed). */
  readiness(): PeerReadiness[] {
    const probed = this.prober.readiness();
    const known = new Set(probed.map((peer) => peer.url));
    const failure = new EndpointNotReady(`Kubernetes marks it not ready in the Service ${this.target.service} (its pod is starting, stopping or failing its readiness probe)`);
    const unready = notReadyUrls(this.slices.values(), this.target).filter((url) => !known.has(url));
    return [...probed, ...unready.map((url) => ({ url, ready: false, failure }))];
  }

  reportFailure(url: string): void {
    this.prober.reportFailure(url);
  }

  reportSlow(url: string): void {
    this.prober.reportSlow(url);
  }

  onChange(listener: (picker: PeerPicker) => void): void {
    this.prober.onChange(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatch?.();
    this.closing.abort();
    this.prober.close();
    this.firstListSettled();
  }

  /** List, watch until the watch ends, wait, again; the prober starts once the first list has settled. */
  private async run(): Promise<void> {
    // Lists or watches that failed in a row, since one worked: the wait before the next list doubles with each.
    let failures = 0;
    const backoff = { baseMs: this.timing.backoffMs, maxMs: this.timing.maxBackoffMs };
    while (!this.closed) {
      let end: WatchEnd;
      try {
        await this.list();
        this.startProbing();
        end = await this.watch();
      } catch (error) {
        end = { failed: true, eventsSeen: 0, error };
      }
      this.startProbing();
      if (this.closed) return;
      // A watch that worked (ran to its end, or delivered events) shows the API is healthy again.
      if (!end.failed || end.eventsSeen > 0) failures = 0;
      if (end.failed) failures++;
      const wait = end.failed ? backoffDelay(backoff, failures) : this.timing.backoffMs;
      if (end.failed) {
        this.logger.warn(
          { service: this.target.service, namespace: this.target.namespace, reason: reasonOf(end.error), keeping: this.prober.picker().members.length, retryInMs: wait },
          'cannot list or watch the cache EndpointSlices; keeping the last cache servers',
        );
      }
      await sleepUnlessAborted(wait, this.closing.signal, { unref: true });
    }
  }

  private startProbing(): void {
    if (this.closed) return;
    this.prober.start();
    this.firstListSettled();
  }

  private async list(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the API server did not answer the list within ${this.timing.listTimeoutMs} ms`)), this.timing.listTimeoutMs);
    });
    try {
      const list = await Promise.race([this.api.listNamespacedEndpointSlice({ namespace: this.target.namespace, labelSelector: this.labelSelector }), timeout]);
      if (this.closed) return;
      this.slices = new Map();
      for (const slice of list.items) {
        const name = slice.metadata?.name;
        if (name !== undefined) this.slices.set(name, slice);
      }
      this.resourceVersion = list.metadata?.resourceVersion ?? '';
      this.publish();
    } finally {
      clearTimeout(timer);
    }
  }

  /** Watches from the listed resourceVersion until the server ends the watch, it fails, or close(). */
  private watch(): Promise<WatchEnd> {
    if (this.closed) return Promise.resolve({ failed: false, eventsSeen: 0 });
    return new Promise((resolve) => {
      let ended = false;
      let eventsSeen = 0;
      let controller: AbortController | undefined;
      const end = (result: WatchEnd) => {
        if (ended) return;
        ended = true;
        clearTimeout(watchdog);
        this.stopWatch = undefined;
        controller?.abort();
        resolve(result);
      };
      // The server ends every watch after timeoutSeconds; one still open well after that sits on a dead
      // connection that no event will ever cross, so it is dropped and the slices listed afresh.
      const watchdog = setTimeout(() => end({ failed: false, eventsSeen }), (this.timing.watchTimeoutSeconds + WATCH_GRACE_SECONDS) * 1000);
      watchdog.unref();
      this.stopWatch = () => end({ failed: false, eventsSeen });
      const query = { labelSelector: this.labelSelector, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: this.timing.watchTimeoutSeconds };
      const onEvent = (type: string, object: unknown) => {
        if (ended) return;
        eventsSeen += 1;
        const verdict = this.apply(type, object);
        if (verdict === 'relist') end({ failed: false, eventsSeen });
        else if (verdict !== 'ok') end({ failed: true, eventsSeen, error: verdict });
      };
      const onDone = (error: unknown) => end(error === null || error === undefined ? { failed: false, eventsSeen } : { failed: true, eventsSeen, error });
      this.watcher.watch(this.path, query, onEvent, onDone).then(
        (request) => {
          controller = request;
          if (ended) request.abort();
        },
        (error: unknown) => onDone(error ?? new Error('the watch could not start')),
      );
    });
  }

  /** Applies one watch event; 'relist' when the resourceVersion expired, an Error when the server sent one. */
  private apply(type: string, object: unknown): 'ok' | 'relist' | Error {
    if (type === 'ERROR') {
      const status = object as { code?: number; message?: string } | undefined;
      // 410 Gone: the resourceVersion is too old to watch from; a fresh list catches up.
      if (status?.code === 410) {
        this.resourceVersion = '';
        return 'relist';
      }
      return new Error(`the watch answered an error: ${status?.code ?? '?'} ${status?.message ?? ''}`.trim());
    }
    const slice = object as V1EndpointSlice | undefined;
    const name = slice?.metadata?.name;
    if (slice === undefined || name === undefined) return 'ok';
    if (slice.metadata?.resourceVersion) this.resourceVersion = slice.metadata.resourceVersion;
    if (type === 'ADDED' || type === 'MODIFIED') this.slices.set(name, slice);
    else if (type === 'DELETED') this.slices.delete(name);
    else return 'ok';
    this.publish();
    return 'ok';
  }

  /** Hands the candidates to the prober when they changed. */
  private publish(): void {
    const urls = candidateUrls(this.slices.values(), this.target);
    const key = urls.join(',');
    if (key === this.published) return;
    this.published = key;
    this.logger.info({ service: this.target.service, candidates: urls }, 'cache servers listed by the Service');
    this.prober.setCandidates(urls);
  }

}

function checkTarget(target: KubernetesTarget): void {
  if (!/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(target.service)) {
    throw new Error(`the cache Service name ${JSON.stringify(target.service)} is not a valid Kubernetes Service name; pass the name of the cache's headless Service (lower-case letters, digits and '-')`);
  }
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(target.namespace)) {
    throw new Error(`the namespace ${JSON.stringify(target.namespace)} is not a valid Kubernetes namespace name; pass the namespace the cache servers run in`);
  }
  if (target.port !== undefined && !(Number.isInteger(target.port) && target.port >= 1 && target.port <= 65535)) {
    throw new Error(`the cache port ${target.port} is not a TCP port; pass a number from 1 to 65535`);
  }
  if (target.scheme !== undefined && target.scheme !== 'http' && target.scheme !== 'https') {
    throw new Error(`the cache URL scheme ${JSON.stringify(target.scheme)} is neither http nor https`);
  }
}

function defaultKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}

function reasonOf(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const { code, body, message } = error as { code?: unknown; body?: unknown; message?: unknown };
  // An ApiException's message carries the whole response, headers included; its status says what went wrong.
  if (typeof code === 'number' && 'body' in error) return `HTTP ${code}: ${statusMessage(body)}`.slice(0, 300);
  return (typeof message === 'string' ? message : String(error)).slice(0, 300);
}

function statusMessage(body: unknown): string {
  let status = body;
  if (typeof status === 'string') {
    try {
      status = JSON.parse(status);
    } catch {
      return status as string;
    }
  }
  if (typeof status === 'object' && status !== null && 'message' in status && typeof status.message === 'string') return status.message;
  return '';
}
