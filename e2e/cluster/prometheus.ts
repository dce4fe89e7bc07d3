// Prometheus (the Debian package) run by the harness next to the node: it scrapes the pods annotated
// prometheus.io/scrape, as the chart annotates the cache and node plugin pods, found the way an in-cluster
// Prometheus's pod discovery finds them. It listens on 127.0.0.1 only, keeps
// its data under the node's folder (removed at teardown) and runs in the harness's cgroup, so the cleanup of an
// interrupted run finds it like every other daemon.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../support/s3-server';
import { type Daemon, startDaemon, waitFor } from './daemon';
import type { ClusterNode } from './node';

/** The Debian package's binary (e2e/cluster/debian-packages.json pins the package). */
export const PROMETHEUS_BINARY = '/usr/bin/prometheus';

/** How often every target is scraped: short, so a test sees a change within seconds. */
export const SCRAPE_INTERVAL_S = 2;

/** One series of an instant query's answer. */
export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

/** A running Prometheus. */
export interface Prometheus {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly daemon: Daemon;
  /** An instant query through the HTTP API (/api/v1/query); throws with Prometheus's error for a bad one. */
  query(expr: string): Promise<PromSample[]>;
  stop(): Promise<void>;
}

/** A target group of Prometheus's file-based discovery. */
export interface TargetGroup {
  readonly targets: string[];
  readonly labels: Record<string, string>;
}

/** A pod as the discovery reads it. */
interface PodObject {
  metadata: { name: string; namespace: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: { nodeName?: string };
  status: { phase?: string; podIP?: string };
}

/**
 * The scrape targets of the cluster's pods, found the way the usual kubernetes_sd_configs relabelling finds them:
 * Running pods annotated prometheus.io/scrape "true", at their IP and the annotated port and path, labelled
 * namespace, pod, node and component (app.kubernetes.io/component).
 */
export function podTargets(pods: readonly PodObject[]): TargetGroup[] {
  return pods.flatMap((pod) => {
    const annotations = pod.metadata.annotations ?? {};
    if (annotations['prometheus.io/scrape'] !== 'true' || pod.status.phase !== 'Running' || !pod.status.podIP) return [];
    const port = annotations['prometheus.io/port'];
    if (!port || !/^\d+$/.test(port)) return [];
    return [{
      targets: [`${pod.status.podIP}:${port}`],
      labels: {
        __metrics_path__: annotations['prometheus.io/path'] ?? '/metrics',
        namespace: pod.metadata.namespace,
        pod: pod.metadata.name,
        node: pod.spec.nodeName ?? '',
        component: pod.metadata.labels?.['app.kubernetes.io/component'] ?? '',
      },
    }];
  });
}

/** The prometheus.yml: one job, its targets from `targetsFile` (file-based discovery, re-read when it changes). */
export function prometheusConfig(targetsFile: string): string {
  return stringify({
    global: { scrape_interval: `${SCRAPE_INTERVAL_S}s`, scrape_timeout: `${SCRAPE_INTERVAL_S}s`, evaluation_interval: `${SCRAPE_INTERVAL_S}s` },
    scrape_configs: [{ job_name: 'kubernetes-pods', file_sd_configs: [{ files: [targetsFile], refresh_interval: `${SCRAPE_INTERVAL_S}s` }] }],
  });
}

/**
 * Starts Prometheus and the discovery of its targets, and waits until it is ready. Debian builds Prometheus without
 * its Kubernetes service discovery (kubernetes_sd_configs is not a known field there), so the harness does that
 * part: every SCRAPE_INTERVAL_S it lists the pods through the API server and writes their targets (podTargets) to
 * the file Prometheus discovers them from.
 */
export async function startPrometheus(node: ClusterNode): Promise<Prometheus> {
  const dir = path.join(node.config.baseDir, 'prometheus');
  await fs.mkdir(path.join(dir, 'data'), { recursive: true });
  const configFile = path.join(dir, 'prometheus.yml');
  const targetsFile = path.join(dir, 'targets.json');
  const discover = async (): Promise<void> => {
    const pods = JSON.parse((await node.kubectl(['get', 'pods', '--all-namespaces', '-o', 'json'])).stdout) as { items: PodObject[] };
    await fs.writeFile(`${targetsFile}.tmp`, JSON.stringify(podTargets(pods.items)));
    await fs.rename(`${targetsFile}.tmp`, targetsFile);
  };
  await discover();
  await fs.writeFile(configFile, prometheusConfig(targetsFile));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const daemon = startDaemon(node.config.cgroup, 'prometheus', PROMETHEUS_BINARY, [
    `--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`,
  ], path.join(node.dirs.logs, 'prometheus.log'));
  let discovering: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    // One discovery at a time; a failed one (the API server busy) is retried at the next tick.
    discovering = discovering.then(discover).catch(() => undefined);
  }, SCRAPE_INTERVAL_S * 1000);
  const stop = async (): Promise<void> => {
    clearInterval(timer);
    await discovering;
    await daemon.stop();
  };
  try {
    await waitFor('prometheus to be ready', async () => (await fetch(`${url}/-/ready`)).ok, 60_000, [daemon]);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    daemon,
    async query(expr) {
      const response = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr })}`);
      const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] } };
      if (body.status !== 'success' || !body.data) throw new Error(`prometheus refused ${expr}: ${body.error ?? response.status}`);
      if (body.data.resultType !== 'vector') throw new Error(`prometheus answered ${expr} with a ${body.data.resultType}, not a vector`);
      return body.data.result;
    },
    stop,
  };
}

/** One query of a Grafana dashboard: the panel it draws and its PromQL as written. */
export interface DashboardQuery {
  readonly panel: string;
  readonly refId: string;
  readonly expr: string;
}

/** Every target's PromQL of a Grafana dashboard's panels (rows' nested panels included). */
export function dashboardQueries(dashboard: string): DashboardQuery[] {
  type Panel = { title?: string; targets?: { refId?: string; expr?: string }[]; panels?: Panel[] };
  const walk = (panels: readonly Panel[]): DashboardQuery[] => panels.flatMap((panel) => [
    ...(panel.targets ?? []).filter((target) => target.expr).map((target) => ({ panel: panel.title ?? '?', refId: target.refId ?? '?', expr: target.expr! })),
    ...walk(panel.panels ?? []),
  ]);
  return walk((JSON.parse(dashboard) as { panels?: Panel[] }).panels ?? []);
}

/**
 * A dashboard query as Grafana would send it: its template variables replaced ($namespace and the like from
 * `variables`, $__rate_interval by `rateInterval`). A variable left unknown is an error naming it.
 */
export function resolveQuery(expr: string, variables: Readonly<Record<string, string>>, rateInterval: string): string {
  return expr.replace(/\$\{?(__rate_interval|\w+)\}?/g, (whole, name: string) => {
    if (name === '__rate_interval') return rateInterval;
    const value = variables[name];
    if (value === undefined) throw new Error(`the dashboard query ${expr} uses $${name}, which has no value`);
    return value;
  });
}
