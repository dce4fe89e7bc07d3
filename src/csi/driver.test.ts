import * as grpc from '@grpc/grpc-js';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { silentLogger } from '../log/logger';
import { Driver, parseEndpoint } from './driver';
import { CsiError } from './errors';
import { createIdentityService, DRIVER_NAME } from './identity';
import { csiPackage } from './proto';
import { version } from '../version';

describe('Driver over a real gRPC server on a unix socket', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-driver-'));
  const endpoint = `unix://${path.join(dir, 'csi.sock')}`;
  let driver: Driver;
  let identity: InstanceType<ReturnType<typeof csiPackage>['Identity']>;
  let controller: InstanceType<ReturnType<typeof csiPackage>['Controller']>;

  beforeAll(async () => {
    fs.writeFileSync(path.join(dir, 'csi.sock'), 'stale'); // a stale socket must not stop the driver
    driver = new Driver(
      {
        identity: createIdentityService({ controller: true }),
        controller: {
          DeleteVolume: async () => {
            throw new CsiError('INVALID_ARGUMENT', 'volume_id is required');
          },
        },
      },
      silentLogger(),
    );
    await driver.start(endpoint);
    const csi = csiPackage();
    identity = new csi.Identity(endpoint, grpc.credentials.createInsecure());
    controller = new csi.Controller(endpoint, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    identity.close();
    controller.close();
    await driver.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers GetPluginInfo with the driver name and the package version', async () => {
    const info = await new Promise((resolve, reject) => identity.GetPluginInfo({}, (e, r) => (e ? reject(e) : resolve(r))));
    expect(info).toMatchObject({ name: DRIVER_NAME, vendor_version: version });
  });

  it('advertises the controller service when it serves one', async () => {
    const caps = await new Promise((resolve, reject) => identity.GetPluginCapabilities({}, (e, r) => (e ? reject(e) : resolve(r))));
    expect(caps).toMatchObject({ capabilities: [{ service: { type: 'CONTROLLER_SERVICE' } }] });
  });

  it('turns a thrown CsiError into its gRPC status and message', async () => {
    const error = await new Promise<grpc.ServiceError>((resolve) => controller.DeleteVolume({}, (e) => resolve(e as grpc.ServiceError)));
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toBe('volume_id is required');
  });

  it('answers UNIMPLEMENTED for a method the plugin does not offer', async () => {
    const error = await new Promise<grpc.ServiceError>((resolve) => controller.ListVolumes({}, (e) => resolve(e as grpc.ServiceError)));
    expect(error.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it('refuses a socket another process serves (a second granary csi), and the first goes on serving', async () => {
    const second = new Driver({ identity: createIdentityService({ controller: false }) }, silentLogger());
    await expect(second.start(endpoint)).rejects.toThrow(`--endpoint ${endpoint}: another process is serving on ${path.join(dir, 'csi.sock')} (a second granary csi?); stop it, or give this one another socket`);
    await second.stop(0);
    const info = await new Promise((resolve, reject) => identity.GetPluginInfo({}, (e, r) => (e ? reject(e) : resolve(r))));
    expect(info).toMatchObject({ name: DRIVER_NAME });
  });
});

describe('parseEndpoint', () => {
  it('says which directory is missing instead of bind\'s EACCES', async () => {
    const lost = new Driver({ identity: createIdentityService({ controller: false }) }, silentLogger());
    await expect(lost.start('unix:///missing/dir/csi.sock')).rejects.toThrow('--endpoint unix:///missing/dir/csi.sock: the directory /missing/dir does not exist (create it, or mount the CSI socket volume there)');
    await lost.stop(0);
  });

  it('accepts unix and tcp endpoints', () => {
    expect(parseEndpoint('unix:///csi/csi.sock')).toEqual({ address: 'unix:///csi/csi.sock', socketPath: '/csi/csi.sock' });
    expect(parseEndpoint('tcp://127.0.0.1:10000')).toEqual({ address: '127.0.0.1:10000' });
  });
  it.each(['unix://relative.sock', '/csi.sock', 'http://x:1'])('rejects %s with the accepted forms', (endpoint) => {
    expect(() => parseEndpoint(endpoint)).toThrow(/unix:\/\/\/|absolute path/);
  });
});
