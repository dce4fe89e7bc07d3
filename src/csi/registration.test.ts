import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { capturingLogger, silentLogger } from '../log/logger';
import type { PluginInfo__Output } from './generated/pluginregistration/PluginInfo';
import type { RegistrationClient } from './generated/pluginregistration/Registration';
import { DRIVER_NAME } from './identity';
import { registrationPackage } from './proto';
import { KubeletRegistration, REGISTRATION_SOCKET_NAME } from './registration';

/** What the kubelet's client does: GetInfo, then NotifyRegistrationStatus, over the registration socket. */
function kubeletClient(socketPath: string): RegistrationClient {
  return new (registrationPackage().Registration)(`unix://${socketPath}`, grpc.credentials.createInsecure());
}

function getInfo(client: RegistrationClient): Promise<PluginInfo__Output> {
  return new Promise((resolve, reject) => client.GetInfo({}, (error, info) => (error || !info ? reject(error) : resolve(info))));
}

function notify(client: RegistrationClient, status: { plugin_registered: boolean; error?: string }): Promise<unknown> {
  return new Promise((resolve, reject) => client.NotifyRegistrationStatus(status, (error, response) => (error ? reject(error) : resolve(response))));
}

/** A listening unix socket at `socketPath` standing for the driver's CSI endpoint. */
async function listeningSocket(socketPath: string): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return server;
}

const HOST_ENDPOINT = '/var/lib/kubelet/plugins/csi.granary.dev/csi.sock';

describe('KubeletRegistration over a real unix socket, a gRPC client playing the kubelet', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-registration-'));
  const registrationDir = path.join(dir, 'plugins_registry');
  const lines: Array<Record<string, unknown>> = [];
  let registration: KubeletRegistration;
  let kubelet: RegistrationClient;

  beforeAll(async () => {
    fs.mkdirSync(registrationDir);
    // A socket file left by a run that was killed must not keep the next one from listening.
    fs.writeFileSync(path.join(registrationDir, REGISTRATION_SOCKET_NAME), 'stale');
    registration = new KubeletRegistration({ registrationDir, kubeletRegistrationPath: HOST_ENDPOINT, logger: capturingLogger(lines) });
    await registration.start();
    kubelet = kubeletClient(registration.socketPath);
  });

  afterAll(async () => {
    kubelet.close();
    await registration.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("listens on a socket named after the driver in the registration directory, replacing a stale file", () => {
    expect(registration.socketPath).toBe(path.join(registrationDir, 'csi.granary.dev-reg.sock'));
    expect(fs.statSync(registration.socketPath).isSocket()).toBe(true);
  });

  it("answers GetInfo with a CSI plugin of the driver's name, the endpoint as the kubelet sees it and CSI 1.0.0", async () => {
    await expect(getInfo(kubelet)).resolves.toEqual({ type: 'CSIPlugin', name: DRIVER_NAME, endpoint: HOST_ENDPOINT, supported_versions: ['1.0.0'] });
  });

  it("logs the kubelet's refusal at error level with its reason and what to check", async () => {
    await expect(notify(kubelet, { plugin_registered: false, error: 'RegisterPlugin error -- dial unix /var/lib/kubelet/plugins/x.sock: connect: no such file' })).resolves.toEqual({});
    const refusal = lines.find((line) => line.level === 50);
    expect(refusal).toMatchObject({ kubeletError: expect.stringContaining('connect: no such file'), endpoint: HOST_ENDPOINT });
    expect(refusal?.msg).toEqual(expect.stringContaining(`check that --kubelet-registration-path (${HOST_ENDPOINT}) is the CSI socket's path on the host`));
  });

  it('logs a successful registration at info level', async () => {
    await notify(kubelet, { plugin_registered: true });
    expect(lines.filter((line) => line.msg === 'registered with the kubelet').map((line) => line.level)).toEqual([30]);
  });
});

describe('KubeletRegistration start and stop', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-registration-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to start when the registration directory does not exist, naming the flag', async () => {
    const registration = new KubeletRegistration({ registrationDir: path.join(dir, 'plugins_registry'), kubeletRegistrationPath: HOST_ENDPOINT, logger: silentLogger() });
    await expect(registration.start()).rejects.toThrow(`the kubelet's registration directory ${path.join(dir, 'plugins_registry')} does not exist: give --registration-dir`);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('removes its socket at stop, so the kubelet unregisters the driver, and answers no more', async () => {
    const registration = new KubeletRegistration({ registrationDir: dir, kubeletRegistrationPath: HOST_ENDPOINT, logger: silentLogger() });
    await registration.start();
    const kubelet = kubeletClient(registration.socketPath);
    try {
      await getInfo(kubelet);
      await registration.stop();
      expect(fs.existsSync(registration.socketPath)).toBe(false);
      await expect(getInfo(kubelet)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    } finally {
      kubelet.close();
    }
  });

  it('warns when the path told to the kubelet is visible here and is not the socket the driver listens on', async () => {
    const endpoint = await listeningSocket(path.join(dir, 'csi.sock'));
    const registrationDir = path.join(dir, 'registry');
    fs.mkdirSync(registrationDir);
    fs.writeFileSync(path.join(dir, 'other.sock'), '');
    const warnings = async (kubeletRegistrationPath: string): Promise<unknown[]> => {
      const lines: Array<Record<string, unknown>> = [];
      const registration = new KubeletRegistration({ registrationDir, kubeletRegistrationPath, endpointSocketPath: path.join(dir, 'csi.sock'), logger: capturingLogger(lines) });
      await registration.start();
      await registration.stop();
      return lines.filter((line) => line.level === 40).map((line) => line.msg);
    };
    try {
      expect(await warnings(path.join(dir, 'other.sock'))).toEqual([expect.stringContaining(`--kubelet-registration-path ${path.join(dir, 'other.sock')} is not the socket this driver listens on`)]);
      // The same socket through another path (the chart's kubelet-dir mount) and a path not visible here are fine.
      fs.symlinkSync(dir, path.join(dir, 'host-view'));
      expect(await warnings(path.join(dir, 'host-view', 'csi.sock'))).toEqual([]);
      expect(await warnings(HOST_ENDPOINT)).toEqual([]);
    } finally {
      await new Promise((resolve) => endpoint.close(resolve));
    }
  });
});

describe("the registration proto matches the kubelet's wire format", () => {
  const service = registrationPackage().Registration.service;

  it('serves the methods at the paths the kubelet calls', () => {
    expect([service.GetInfo.path, service.NotifyRegistrationStatus.path]).toEqual(['/pluginregistration.Registration/GetInfo', '/pluginregistration.Registration/NotifyRegistrationStatus']);
  });

  it('encodes PluginInfo with fields 1 to 4 (type, name, endpoint, supported_versions)', () => {
    const encoded = service.GetInfo.responseSerialize({ type: 'T', name: 'N', endpoint: 'E', supported_versions: ['V'] });
    // Each field: tag (field number << 3 | 2, length-delimited), length 1, one byte.
    expect([...encoded]).toEqual([0x0a, 1, 0x54, 0x12, 1, 0x4e, 0x1a, 1, 0x45, 0x22, 1, 0x56]);
  });

  it('decodes RegistrationStatus from fields 1 (plugin_registered) and 2 (error)', () => {
    const decoded = service.NotifyRegistrationStatus.requestDeserialize(Buffer.from([0x08, 1, 0x12, 1, 0x78]));
    expect(decoded).toEqual({ plugin_registered: true, error: 'x' });
  });
});
