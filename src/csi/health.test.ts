import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { capturingLogger, silentLogger } from '../log/logger';
import { Driver } from './driver';
import { HealthServer } from './health';
import { createIdentityService } from './identity';

/** One request to the health server on a fresh connection: status, headers and body. */
function request(port: number, method: string, urlPath: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

describe('HealthServer against a real CSI driver on a unix socket', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-health-'));
  const lines: Array<Record<string, unknown>> = [];
  /** What the driver's Probe answers: ready, not ready, or never (held until the test lets it go). */
  let ready: () => Promise<boolean> = async () => true;
  let driver: Driver;
  let health: HealthServer;
  let port: number;

  beforeAll(async () => {
    driver = new Driver({ identity: createIdentityService({ controller: false, ready: () => ready() }) }, silentLogger());
    const driverAddress = await driver.start(`unix://${path.join(dir, 'csi.sock')}`);
    health = new HealthServer({ driverAddress, probeTimeoutMs: 300, logger: capturingLogger(lines) });
    port = (await health.listen('127.0.0.1', 0)).port;
  });

  afterAll(async () => {
    await health.close();
    await driver.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers 200 when the driver answers Probe ready, closing the connection after it', async () => {
    const response = await request(port, 'GET', '/healthz');
    expect(response).toMatchObject({ status: 200, body: 'ok\n', headers: { connection: 'close', 'content-type': 'text/plain; charset=utf-8' } });
    await expect(request(port, 'HEAD', '/healthz')).resolves.toMatchObject({ status: 200, body: '' });
  });

  it('answers 500 with the reason when the driver says it is not ready, and logs the change once', async () => {
    ready = async () => false;
    const first = await request(port, 'GET', '/healthz');
    await request(port, 'GET', '/healthz');
    ready = async () => true;
    expect(first.status).toBe(500);
    expect(first.body).toContain(`the CSI driver at unix://${path.join(dir, 'csi.sock')} answers Probe: not ready`);
    expect(lines.filter((line) => line.level === 40).map((line) => line.reason)).toEqual([first.body.trim()]);
    await expect(request(port, 'GET', '/healthz')).resolves.toMatchObject({ status: 200 });
    expect(lines.map((line) => line.msg)).toContain('health check passing again');
  });

  it('answers 500 when Probe takes longer than the probe timeout', async () => {
    let release = (): void => undefined;
    ready = () => new Promise((resolve) => (release = () => resolve(true)));
    const response = await request(port, 'GET', '/healthz');
    release();
    ready = async () => true;
    expect(response.status).toBe(500);
    expect(response.body).toMatch(/did not answer Probe \(timeout 300 ms\): 4 DEADLINE_EXCEEDED/);
  });

  it('serves nothing but GET and HEAD /healthz', async () => {
    await expect(request(port, 'GET', '/metrics')).resolves.toMatchObject({ status: 404, body: 'this port serves only GET /healthz\n' });
    await expect(request(port, 'POST', '/healthz')).resolves.toMatchObject({ status: 405, headers: { allow: 'GET, HEAD' } });
    await expect(request(port, 'GET', '/healthz?verbose=1')).resolves.toMatchObject({ status: 200 });
  });

  // Last: the driver does not come back.
  it('answers 500 once the driver is stopped', async () => {
    await driver.stop();
    const response = await request(port, 'GET', '/healthz');
    expect(response.status).toBe(500);
    expect(response.body).toMatch(/did not answer Probe \(timeout 300 ms\): 14 UNAVAILABLE/);
  });
});
