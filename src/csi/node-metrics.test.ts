import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Counter, Registry } from 'prom-client';
import { silentLogger } from '../log/logger';
import { serveMetricsSocket, type MetricsSocket } from '../metrics/socket-server';
import { mergeExpositions, NodeMetricsServer, readMountMetrics, type MountMetricsSource } from './node-metrics';

function get(port: number, urlPath: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** What a mount's registry holds (cache/mount-cache-metrics.ts): counters, one of them labelled. */
function mountRegistry(ram: number, disk: number): Registry {
  const registry = new Registry();
  const bytes = new Counter({ name: 'granary_mount_cache_bytes_total', help: 'Bytes.', labelNames: ['from'], registers: [registry] });
  bytes.inc({ from: 'ram' }, ram);
  bytes.inc({ from: 'disk' }, disk);
  bytes.inc({ from: 'origin' }, 0);
  new Counter({ name: 'granary_mount_cache_fetches_total', help: 'Fetches.', registers: [registry] }).inc(3);
  new Counter({ name: 'granary_mount_cache_failures_total', help: 'Failures.', registers: [registry] }).inc(1);
  return registry;
}

describe('the node plugin\'s /metrics over its mounts\' unix sockets', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-node-metrics-'));
  const sockets: MetricsSocket[] = [];
  let mounts: MountMetricsSource[] = [];
  let server: NodeMetricsServer;
  let port: number;

  /** A mount's socket as `granary mount --cache-metrics-socket` serves it. */
  async function mountSocket(name: string, registry: Registry): Promise<string> {
    const socket = await serveMetricsSocket(registry, path.join(dir, name, 'metrics.sock'));
    sockets.push(socket);
    return socket.socketPath;
  }

  beforeAll(async () => {
    server = new NodeMetricsServer({ mounts: () => mounts, logger: silentLogger(), registry: new Registry(), mountScrapeTimeoutMs: 500 });
    port = (await server.listen('127.0.0.1', 0)).port;
  });

  afterAll(async () => {
    await server.close();
    for (const socket of sockets) await socket.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves each mount\'s counters labelled with its volume, one HELP and TYPE per family, and counts the mounts', async () => {
    mounts = [
      { volumeId: 'models/llama', readOnly: true, metricsSocket: await mountSocket('a', mountRegistry(4096, 1024)) },
      { volumeId: 'vol/"quoted"', readOnly: false, metricsSocket: await mountSocket('b', mountRegistry(10, 0)) },
      { volumeId: 'no-cache', readOnly: false },
    ];
    const { status, body } = await get(port, '/metrics');
    expect(status).toBe(200);
    expect(body.match(/^# TYPE granary_mount_cache_bytes_total counter$/gm)).toHaveLength(1);
    expect(body).toContain('granary_mount_cache_bytes_total{volume_id="models/llama",from="ram"} 4096');
    expect(body).toContain('granary_mount_cache_bytes_total{volume_id="models/llama",from="disk"} 1024');
    expect(body).toContain('granary_mount_cache_bytes_total{volume_id="vol/\\"quoted\\"",from="origin"} 0');
    expect(body).toContain('granary_mount_cache_fetches_total{volume_id="models/llama"} 3');
    expect(body).toContain('granary_mount_cache_failures_total{volume_id="vol/\\"quoted\\""} 1');
    expect(body).toContain('granary_node_mounts{read_only="true"} 1');
    expect(body).toContain('granary_node_mounts{read_only="false"} 2');
  });

  it('leaves out a mount that does not answer, counting it, and serves the others', async () => {
    // A socket that accepts and never answers: the scrape must not wait for it beyond its timeout.
    const silent = path.join(dir, 'silent.sock');
    const hanging = http.createServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(silent, resolve));
    try {
      mounts = [
        { volumeId: 'alive', readOnly: true, metricsSocket: await mountSocket('c', mountRegistry(7, 0)) },
        { volumeId: 'hung', readOnly: true, metricsSocket: silent },
        { volumeId: 'gone', readOnly: true, metricsSocket: path.join(dir, 'nothing.sock') },
      ];
      const { status, body } = await get(port, '/metrics');
      expect(status).toBe(200);
      expect(body).toContain('granary_mount_cache_bytes_total{volume_id="alive",from="ram"} 7');
      expect(body).not.toContain('volume_id="hung",from');
      expect(body).toContain('granary_node_mount_scrape_failures_total{volume_id="hung"} 1');
      expect(body).toContain('granary_node_mount_scrape_failures_total{volume_id="gone"} 1');
      expect(body).toContain('granary_node_mount_scrape_failures_total{volume_id="alive"} 0');
    } finally {
      hanging.closeAllConnections();
      await new Promise((resolve) => hanging.close(resolve));
    }
  });

  it('answers only GET /metrics', async () => {
    await expect(get(port, '/')).resolves.toMatchObject({ status: 404 });
    await expect(get(port, '/metrics', 'POST')).resolves.toMatchObject({ status: 405 });
  });

  it('reads a mount\'s socket, which only its owner may open (mode 0600)', async () => {
    const socketPath = await mountSocket('d', mountRegistry(0, 5));
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o600);
    const text = await readMountMetrics(socketPath, 500);
    expect(text).toContain('granary_mount_cache_bytes_total{from="disk"} 5');
  });
});

describe('mergeExpositions', () => {
  it('adds the labels first, keeps the existing ones and the histogram suffixes, and writes each family\'s header once', () => {
    const text = [
      '# HELP h_seconds A histogram.', '# TYPE h_seconds histogram',
      'h_seconds_bucket{le="0.1"} 1', 'h_seconds_bucket{le="+Inf"} 2', 'h_seconds_sum 0.3', 'h_seconds_count 2', '',
    ].join('\n');
    expect(mergeExpositions([{ labels: { volume_id: 'a' }, text }, { labels: { volume_id: 'b' }, text }]).split('\n')).toEqual([
      '# HELP h_seconds A histogram.', '# TYPE h_seconds histogram',
      'h_seconds_bucket{volume_id="a",le="0.1"} 1', 'h_seconds_bucket{volume_id="a",le="+Inf"} 2', 'h_seconds_sum{volume_id="a"} 0.3', 'h_seconds_count{volume_id="a"} 2',
      'h_seconds_bucket{volume_id="b",le="0.1"} 1', 'h_seconds_bucket{volume_id="b",le="+Inf"} 2', 'h_seconds_sum{volume_id="b"} 0.3', 'h_seconds_count{volume_id="b"} 2',
      '',
    ]);
    expect(mergeExpositions([])).toBe('');
  });
});
