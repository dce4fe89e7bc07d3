// GET /metrics of the CSI node plugin (`granary csi --metrics-listen`): its own metrics and those of every mount
// process it started, one scrape for the whole node. The mounts run inside the node plugin's pod and come and go
// with volumes, so they open no port: each serves its registry on a unix socket (root's, mode 0600) in its volume's
// state folder (metrics/socket-server.ts), and this server reads them at scrape time and adds a volume_id label to
// each mount's series. A mount that does not answer in time is left out of that scrape (and counted), never
// holds the others up. Like the health port, this one serves counters only: no data, no request body read,
// bounded headers, time and connections.
import * as http from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../log/logger';
import { createRegistry } from '../metrics/registry';
import { METRICS_PATH } from '../metrics/socket-server';
import { type EndpointLimits, HttpEndpoint } from './http-endpoint';

/** Bounds every client of the metrics port meets (a Prometheus scrape needs a fraction of each). */
const METRICS_LIMITS: EndpointLimits = { headersTimeoutMs: 5000, requestTimeoutMs: 30_000, maxHeaderBytes: 8 * 1024, maxConnections: 16 };

/** How long one mount's socket gets to answer a scrape. */
export const MOUNT_SCRAPE_TIMEOUT_MS = 3000;

/** Bytes of one mount's answer read at most (its handful of counters take a few KiB). */
const MAX_MOUNT_METRICS_BYTES = 1024 * 1024;

/** A running mount whose metrics the node plugin collects. */
export interface MountMetricsSource {
  volumeId: string;
  readOnly: boolean;
  /** The unix socket the mount serves its metrics on; undefined for a mount with none (one that reads without the cache). */
  metricsSocket?: string | undefined;
}

/** What a NodeMetricsServer serves. */
export interface NodeMetricsOptions {
  /** The node's running mounts, read at each scrape. */
  mounts: () => readonly MountMetricsSource[];
  logger: Logger;
  /** The node plugin's own registry (default: a new one with the process metrics). */
  registry?: Registry;
  /** See MOUNT_SCRAPE_TIMEOUT_MS. */
  mountScrapeTimeoutMs?: number;
}

/** The metrics endpoint of the node plugin: listen(), then close() at shutdown. */
export class NodeMetricsServer extends HttpEndpoint {
  private readonly registry: Registry;
  private readonly scrapeFailures: Counter<'volume_id'>;

  constructor(private readonly options: NodeMetricsOptions) {
    super(METRICS_LIMITS, { logger: options.logger, path: METRICS_PATH, message: 'metrics endpoint listening (the node plugin\'s and its mounts\')' });
    this.registry = options.registry ?? createRegistry();
    const registers = [this.registry];
    const mountsGauge: Gauge<'read_only'> = new Gauge({
      name: 'granary_node_mounts',
      help: 'Staged volumes whose mount process runs on this node, by access (read_only true or false).',
      labelNames: ['read_only'],
      registers,
      collect: () => {
        const mounts = options.mounts();
        for (const readOnly of ['true', 'false']) mountsGauge.set({ read_only: readOnly }, mounts.filter((mount) => String(mount.readOnly) === readOnly).length);
      },
    });
    this.scrapeFailures = new Counter({
      name: 'granary_node_mount_scrape_failures_total',
      help: 'Scrapes in which a mount process did not answer for its metrics (left out of that scrape).',
      labelNames: ['volume_id'],
      registers,
    });
  }

  /** The exposition text: every mount's series (with volume_id), then the node plugin's own. */
  async metrics(): Promise<string> {
    const mounts = this.options.mounts().flatMap((mount) => (mount.metricsSocket ? [{ ...mount, metricsSocket: mount.metricsSocket }] : []));
    const answers = await Promise.all(mounts.map(async (mount) => {
      // Each mount's series exists from its first scrape, at 0: an alert on its rate sees a healthy mount, not no data.
      this.scrapeFailures.inc({ volume_id: mount.volumeId }, 0);
      try {
        return { mount, text: await readMountMetrics(mount.metricsSocket, this.options.mountScrapeTimeoutMs ?? MOUNT_SCRAPE_TIMEOUT_MS) };
      } catch (error) {
        this.scrapeFailures.inc({ volume_id: mount.volumeId });
        this.options.logger.debug({ volumeId: mount.volumeId, err: error }, 'a mount did not answer for its metrics');
        return undefined;
      }
    }));
    const merged = mergeExpositions(answers.flatMap((answer) => (answer ? [{ labels: { volume_id: answer.mount.volumeId }, text: answer.text }] : [])));
    return merged + (await this.registry.metrics());
  }

  protected handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    response.setHeader('Connection', 'close');
    if ((request.url ?? '').split('?')[0] !== METRICS_PATH) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`this port serves only GET ${METRICS_PATH}\n`);
      return;
    }
    if (request.method !== 'GET') {
      response.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', Allow: 'GET' }).end(`${METRICS_PATH} answers GET only\n`);
      return;
    }
    this.metrics().then(
      (text) => response.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
      (error: Error) => response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${error.message}\n`),
    );
  }
}

/** GET /metrics over a mount's unix socket; rejects on a non-200 answer, a too big one, or no answer within `timeoutMs`. */
export function readMountMetrics(socketPath: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({ socketPath, path: METRICS_PATH, timeout: timeoutMs, headers: { Connection: 'close' } }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`${socketPath} answered ${response.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_MOUNT_METRICS_BYTES) {
          request.destroy(new Error(`${socketPath} answered more than ${MAX_MOUNT_METRICS_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`${socketPath} did not answer within ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

/** One process's exposition text and the labels to add to each of its samples. */
export interface LabelledExposition {
  labels: Readonly<Record<string, string>>;
  text: string;
}

/** A label value escaped as the text format wants it (backslash, double quote, newline). */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * Merges Prometheus text expositions of processes that share metric names (prom-client's output: a family's
 * `# HELP` and `# TYPE` lines, then its samples) into one: each family's HELP and TYPE once, then the samples of
 * every process, each with that process's labels added first.
 */
export function mergeExpositions(expositions: readonly LabelledExposition[]): string {
  const families = new Map<string, { header: string[]; samples: string[] }>();
  for (const { labels, text } of expositions) {
    const added = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',');
    let family: { header: string[]; samples: string[] } | undefined;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const comment = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (comment) {
        const name = comment[2]!;
        family = families.get(name);
        if (!family) families.set(name, (family = { header: [], samples: [] }));
        if (family.header.length < 2 && !family.header.some((header) => header.startsWith(`# ${comment[1]} `))) family.header.push(line);
        continue;
      }
      if (line.startsWith('#') || !family) continue;
      const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?( .*)$/.exec(line);
      if (!sample) continue;
      const [, name, , existing, rest] = sample;
      family.samples.push(`${name}{${[added, existing].filter(Boolean).join(',')}}${rest}`);
    }
  }
  return [...families.values()].map((family) => [...family.header, ...family.samples].join('\n')).join('\n') + (families.size > 0 ? '\n' : '');
}
