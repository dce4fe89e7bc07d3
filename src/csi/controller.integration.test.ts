import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createBucket, freePort, s3Client, testS3 } from '../../e2e/support/s3-server';
import { silentLogger } from '../log/logger';
import { createControllerService, MARKER_METADATA } from './controller';
import { Driver } from './driver';
import type { CreateVolumeRequest } from './generated/csi/v1/CreateVolumeRequest';
import type { CreateVolumeResponse__Output } from './generated/csi/v1/CreateVolumeResponse';
import type { VolumeCapability } from './generated/csi/v1/VolumeCapability';
import { createIdentityService } from './identity';
import { csiPackage } from './proto';
import { s3StoreFactory } from './s3-store-factory';

type ControllerClient = InstanceType<ReturnType<typeof csiPackage>['Controller']>;

/** More than one listing page (S3 returns at most 1000 keys), to prove DeleteVolume paginates. */
const OBJECTS_PAST_ONE_PAGE = 1100;
/** Parallel PUTs while filling a volume: enough to be quick, few enough for the test server. */
const PUT_CONCURRENCY = 32;

describe('Controller service through a real gRPC driver and the real S3 server', () => {
  const s3 = testS3();
  const secrets = { endpoint: s3.endpoint, region: s3.region, accessKeyID: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-controller-'));
  const endpoint = `unix://${path.join(dir, 'csi.sock')}`;
  let driver: Driver;
  let client: ControllerClient;
  let sdk: S3Client;
  let bucket: string;

  /** Calls one Controller RPC and resolves with its response, or rejects with the gRPC error. */
  function call<Response>(method: 'CreateVolume' | 'DeleteVolume' | 'ValidateVolumeCapabilities' | 'ControllerGetCapabilities', request: object): Promise<Response> {
    return new Promise((resolve, reject) => {
      (client[method] as unknown as (r: object, cb: (e: grpc.ServiceError | null, r: Response) => void) => void).call(client, request, (error, response) =>
        error ? reject(error) : resolve(response),
      );
    });
  }

  const mountCapability: VolumeCapability = { mount: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };
  const createRequest = (name: string, parameters: Record<string, string> = {}, overrides: Partial<CreateVolumeRequest> = {}): CreateVolumeRequest => ({
    name,
    capacity_range: { required_bytes: 5 * 1024 ** 3 },
    volume_capabilities: [mountCapability],
    parameters: { bucket, 'csi.storage.k8s.io/pvc/namespace': 'ml', 'csi.storage.k8s.io/pvc/name': name, ...parameters },
    secrets,
    ...overrides,
  });

  async function putObjects(prefix: string, count: number): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const i = next++;
        await sdk.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}shard-${String(i).padStart(5, '0')}.bin`, Body: 'x' }));
      }
    };
    await Promise.all(Array.from({ length: PUT_CONCURRENCY }, worker));
  }

  async function keysUnder(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await sdk.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token && { ContinuationToken: token }) }));
      keys.push(...(page.Contents ?? []).map((o) => o.Key ?? ''));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  beforeAll(async () => {
    sdk = s3Client(s3);
    bucket = await createBucket(s3, 'controller');
    driver = new Driver(
      {
        identity: createIdentityService({ controller: true }) as never,
        controller: createControllerService({ openStore: s3StoreFactory({ maxAttempts: 2, requestTimeoutMs: 2_000 }) }),
      },
      silentLogger(),
    );
    await driver.start(endpoint);
    client = new (csiPackage().Controller)(endpoint, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    client.close();
    await driver.stop();
    sdk.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('records a created volume on a marker any S3 client can read, and is idempotent', async () => {
    const created = await call<CreateVolumeResponse__Output>('CreateVolume', createRequest('train'));
    expect(created.volume).toMatchObject({
      volume_id: `${bucket}/ml/train`,
      capacity_bytes: 5 * 1024 ** 3,
      volume_context: { bucket, prefix: 'ml/train/', cache: 'true' },
    });
    const marker = await sdk.send(new HeadObjectCommand({ Bucket: bucket, Key: 'ml/train/' }));
    expect(marker.ContentLength).toBe(0);
    expect(marker.Metadata).toMatchObject({ [MARKER_METADATA.volume]: 'train', [MARKER_METADATA.capacity]: String(5 * 1024 ** 3), [MARKER_METADATA.reclaim]: 'retain' });
    await expect(call('CreateVolume', createRequest('train'))).resolves.toEqual(created);
    await expect(
      call('CreateVolume', createRequest('train', {}, { capacity_range: { required_bytes: 10 * 1024 ** 3 } })),
    ).rejects.toMatchObject({ code: grpc.status.ALREADY_EXISTS });
    await expect(
      call('ValidateVolumeCapabilities', { volume_id: `${bucket}/ml/train`, volume_capabilities: [mountCapability], secrets }),
    ).resolves.toMatchObject({ confirmed: { volume_capabilities: [expect.objectContaining({ access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } })] } });
  });

  it('deletes every object of a reclaim=delete volume, past one listing page', async () => {
    await call('CreateVolume', createRequest('scratch', { reclaim: 'delete' }));
    await putObjects('ml/scratch/', OBJECTS_PAST_ONE_PAGE);
    await putObjects('ml/scratch/nested/', 3);
    await putObjects('ml/scratch-other/', 2);
    expect(await keysUnder('ml/scratch/')).toHaveLength(OBJECTS_PAST_ONE_PAGE + 3 + 1);
    await expect(call('DeleteVolume', { volume_id: `${bucket}/ml/scratch`, secrets })).resolves.toEqual({});
    expect(await keysUnder('ml/scratch/')).toEqual([]);
    expect(await keysUnder('ml/scratch-other/')).toHaveLength(2);
    await expect(call('DeleteVolume', { volume_id: `${bucket}/ml/scratch`, secrets })).resolves.toEqual({});
  }, 60_000);

  it('keeps the objects of a reclaim=retain volume and drops only the ownership', async () => {
    await call('CreateVolume', createRequest('keep'));
    await putObjects('ml/keep/', 2);
    await expect(call('DeleteVolume', { volume_id: `${bucket}/ml/keep`, secrets })).resolves.toEqual({});
    expect(await keysUnder('ml/keep/')).toEqual(['ml/keep/', 'ml/keep/shard-00000.bin', 'ml/keep/shard-00001.bin']);
    const marker = await sdk.send(new HeadObjectCommand({ Bucket: bucket, Key: 'ml/keep/' }));
    expect(marker.Metadata).toEqual({ [MARKER_METADATA.released]: 'keep' });
    // Released, the prefix can be adopted by another volume.
    await expect(call('CreateVolume', createRequest('keep-again', { prefixTemplate: 'ml/keep' }))).resolves.toMatchObject({ volume: { volume_id: `${bucket}/ml/keep` } });
    const adopted = await sdk.send(new HeadObjectCommand({ Bucket: bucket, Key: 'ml/keep/' }));
    expect(adopted.Metadata).toEqual({ [MARKER_METADATA.volume]: 'keep-again', [MARKER_METADATA.capacity]: String(5 * 1024 ** 3), [MARKER_METADATA.reclaim]: 'retain' });
  });

  it('answers FAILED_PRECONDITION for a missing bucket on create, OK on delete, NOT_FOUND on validate', async () => {
    const missing = `missing-${Date.now().toString(36)}`;
    await expect(call('CreateVolume', createRequest('x', { bucket: missing }))).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: expect.stringContaining('create the bucket'),
    });
    await expect(call('DeleteVolume', { volume_id: `${missing}/ml/x`, secrets })).resolves.toEqual({});
    await expect(call('ValidateVolumeCapabilities', { volume_id: `${missing}/ml/x`, volume_capabilities: [mountCapability], secrets })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });

  it('answers PERMISSION_DENIED for wrong credentials', async () => {
    const wrong = { ...secrets, secretAccessKey: 'not-the-secret' };
    const error = await call('CreateVolume', createRequest('denied', {}, { secrets: wrong })).catch((e: grpc.ServiceError) => e);
    expect(error).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect((error as grpc.ServiceError).details).not.toContain('not-the-secret');
    // An unknown access key must not make DeleteVolume report a volume as gone.
    await call('CreateVolume', createRequest('guarded', { reclaim: 'delete' }));
    const unknownKey = { ...secrets, accessKeyID: 'unknown-key' };
    await expect(call('DeleteVolume', { volume_id: `${bucket}/ml/guarded`, secrets: unknownKey })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
  });

  it('answers UNAVAILABLE when nothing listens at the endpoint, and keeps serving', async () => {
    const dead = { ...secrets, endpoint: `http://127.0.0.1:${await freePort()}` };
    await expect(call('CreateVolume', createRequest('offline', {}, { secrets: dead }))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(call('ControllerGetCapabilities', {})).resolves.toEqual({ capabilities: [{ rpc: { type: 'CREATE_DELETE_VOLUME' }, type: 'rpc' }] });
    await expect(call('CreateVolume', createRequest('offline'))).resolves.toMatchObject({ volume: { volume_id: `${bucket}/ml/offline` } });
  }, 30_000);
});
