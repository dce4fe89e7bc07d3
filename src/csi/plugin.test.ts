import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { parseCsiConfig } from '../config/csi';
import { silentLogger } from '../log/logger';
import { createIdentityService } from './identity';
import { startCsiPlugin } from './plugin';
import { csiPackage, registrationPackage } from './proto';
import { REGISTRATION_SOCKET_NAME } from './registration';

function probe(socketPath: string): Promise<unknown> {
  const identity = new (csiPackage().Identity)(`unix://${socketPath}`, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => identity.Probe({}, (error, response) => (identity.close(), error ? reject(error) : resolve(response))));
}

function healthStatus(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (response) => resolve(response.resume().statusCode ?? 0)).on('error', reject);
  });
}

describe('startCsiPlugin: the CSI endpoint, the health endpoint, then the kubelet registration', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-plugin-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const services = { identity: createIdentityService({ controller: false }) };

  it('serves all three, and stop removes the registration socket and closes the health port', async () => {
    const registrationDir = path.join(dir, 'plugins_registry');
    fs.mkdirSync(registrationDir);
    const config = parseCsiConfig({
      mode: 'node', nodeId: 'n', endpoint: `unix://${path.join(dir, 'csi.sock')}`, registerWithKubelet: true, registrationDir, healthListen: '127.0.0.1:0',
    });
    const plugin = await startCsiPlugin(config, services, silentLogger());
    const port = plugin.health?.port ?? 0;
    const socketPath = path.join(registrationDir, REGISTRATION_SOCKET_NAME);
    const kubelet = new (registrationPackage().Registration)(`unix://${socketPath}`, grpc.credentials.createInsecure());
    try {
      const info = await new Promise((resolve, reject) => kubelet.GetInfo({}, (error, response) => (error ? reject(error) : resolve(response))));
      expect(info).toMatchObject({ endpoint: '/var/lib/kubelet/plugins/csi.granary.dev/csi.sock' });
      await expect(healthStatus(port)).resolves.toBe(200);
    } finally {
      kubelet.close();
      await plugin.stop();
    }
    expect(fs.existsSync(socketPath)).toBe(false);
    await expect(healthStatus(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses to start without the registration directory, and stops the CSI endpoint it had started', async () => {
    const endpointPath = path.join(dir, 'csi.sock');
    const config = parseCsiConfig({ mode: 'node', nodeId: 'n', endpoint: `unix://${endpointPath}`, registerWithKubelet: true, registrationDir: path.join(dir, 'missing') });
    await expect(startCsiPlugin(config, services, silentLogger())).rejects.toThrow(/registration directory .*missing does not exist: give --registration-dir/);
    await expect(probe(endpointPath)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('finishes beforeServing (the adoption of mount Pods) before the CSI endpoint exists, and serves nothing when it fails', async () => {
    const endpointPath = path.join(dir, 'csi.sock');
    const config = parseCsiConfig({ mode: 'node', nodeId: 'n', endpoint: `unix://${endpointPath}` });
    const seen: boolean[] = [];
    const plugin = await startCsiPlugin(config, { ...services, beforeServing: async () => void seen.push(fs.existsSync(endpointPath)) }, silentLogger());
    await plugin.stop();
    expect(seen).toEqual([false]);
    const failing = { ...services, beforeServing: async () => Promise.reject(new Error('cannot list the mount Pods')) };
    await expect(startCsiPlugin(config, failing, silentLogger())).rejects.toThrow('cannot list the mount Pods');
    expect(fs.existsSync(endpointPath)).toBe(false);
  });
});
