import { silentLogger } from '../log/logger';
import { MemoryStore } from '../objectstore/memory';
import type { ObjectStore } from '../objectstore/store';
import { createControllerService, MARKER_METADATA, type ControllerService } from './controller';
import type { CreateVolumeRequest__Output } from './generated/csi/v1/CreateVolumeRequest';
import type { VolumeCapability__Output } from './generated/csi/v1/VolumeCapability';
import type { ValidateVolumeCapabilitiesRequest__Output } from './generated/csi/v1/ValidateVolumeCapabilitiesRequest';
import type { AccessMode } from './capabilities';
import type { StoreSettings } from './secrets';

const context = { log: silentLogger() };
const BUCKET = 'volumes';
const GiB = 1024 ** 3;
const pvcMetadata = { 'csi.storage.k8s.io/pvc/namespace': 'team-a', 'csi.storage.k8s.io/pvc/name': 'data' };

function capability(mode: AccessMode = 'SINGLE_NODE_WRITER'): VolumeCapability__Output {
  return { access_type: 'mount', mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode } };
}

/** A CreateVolume request as the gRPC loader decodes it (defaults filled in). */
function createRequest(overrides: Partial<CreateVolumeRequest__Output> = {}): CreateVolumeRequest__Output {
  return {
    name: 'pvc-1',
    capacity_range: { required_bytes: GiB, limit_bytes: 0 },
    volume_capabilities: [capability()],
    parameters: { bucket: BUCKET, ...pvcMetadata },
    secrets: {},
    volume_content_source: null,
    accessibility_requirements: null,
    mutable_parameters: {},
    ...overrides,
  };
}

function validateRequest(overrides: Partial<ValidateVolumeCapabilitiesRequest__Output> = {}): ValidateVolumeCapabilitiesRequest__Output {
  return { volume_id: `${BUCKET}/team-a/data`, volume_context: {}, volume_capabilities: [capability()], parameters: {}, secrets: {}, mutable_parameters: {}, ...overrides };
}

/** A store whose bucket does not exist: every call fails as S3 would. */
class MissingBucketStore extends MemoryStore {
  constructor(bucket: string) {
    super(bucket);
    for (let i = 0; i < 10; i += 1) {
      for (const operation of ['checkBucket', 'head', 'list', 'put', 'delete', 'deleteMany'] as const) this.failNext(operation, 'NoSuchBucket');
    }
  }
}

/** A store that cannot delete some keys, as a bucket policy denying s3:DeleteObject on them would. */
class StubbornStore extends MemoryStore {
  constructor(private readonly undeletable: (key: string) => boolean) {
    super(BUCKET);
  }
  override async deleteMany(keys: string[], signal?: AbortSignal): Promise<string[]> {
    const refused = keys.filter(this.undeletable);
    await super.deleteMany(keys.filter((key) => !this.undeletable(key)), signal);
    return refused;
  }
}

function codeAndMessage(code: string, message: RegExp | string) {
  return expect.objectContaining({ code, message: typeof message === 'string' ? expect.stringContaining(message) : expect.stringMatching(message) });
}

describe('Controller service', () => {
  let store: MemoryStore;
  let opened: { bucket: string; settings: StoreSettings }[];
  let controller: ControllerService;

  function build(bucketStore: (bucket: string) => ObjectStore = (bucket) => (bucket === BUCKET ? store : new MissingBucketStore(bucket))) {
    controller = createControllerService({
      openStore: (bucket, settings) => {
        opened.push({ bucket, settings });
        return bucketStore(bucket);
      },
    });
  }

  beforeEach(() => {
    store = new MemoryStore(BUCKET);
    opened = [];
    build();
  });

  async function putObjects(prefix: string, count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, (_, i) => store.put(`${prefix}file-${String(i).padStart(5, '0')}`, Buffer.from('x'))));
  }

  describe('ControllerGetCapabilities', () => {
    it('advertises CREATE_DELETE_VOLUME only', async () => {
      await expect(controller.ControllerGetCapabilities({}, context)).resolves.toEqual({ capabilities: [{ rpc: { type: 'CREATE_DELETE_VOLUME' } }] });
    });
  });

  describe('CreateVolume', () => {
    it('records the volume on the prefix marker and returns bucket/prefix as the volume ID', async () => {
      const response = await controller.CreateVolume(createRequest(), context);
      expect(response).toEqual({
        volume: { volume_id: 'volumes/team-a/data', capacity_bytes: GiB, volume_context: { bucket: BUCKET, prefix: 'team-a/data/', cache: 'true' } },
      });
      const marker = await store.head('team-a/data/');
      expect(marker.size).toBe(0);
      expect(marker.metadata).toEqual({ [MARKER_METADATA.volume]: 'pvc-1', [MARKER_METADATA.capacity]: String(GiB), [MARKER_METADATA.reclaim]: 'retain' });
    });

    it('uses the PV name without extra create metadata, and reports 0 bytes when no capacity is asked', async () => {
      const response = await controller.CreateVolume(createRequest({ parameters: { bucket: BUCKET, cache: 'false' }, capacity_range: null }), context);
      expect(response.volume).toMatchObject({ volume_id: 'volumes/pvc-1', capacity_bytes: 0, volume_context: { prefix: 'pvc-1/', cache: 'false' } });
    });

    it('passes the store settings from the secrets', async () => {
      await controller.CreateVolume(createRequest({ secrets: { accessKeyID: 'AK', secretAccessKey: 'SK', endpoint: 'http://127.0.0.1:9' } }), context);
      expect(opened).toEqual([{ bucket: BUCKET, settings: { endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } } }]);
    });

    it('is idempotent: the same call twice returns the same volume', async () => {
      const first = await controller.CreateVolume(createRequest(), context);
      const second = await controller.CreateVolume(createRequest(), context);
      expect(second).toEqual(first);
      // A smaller request is satisfied by the existing volume too.
      await expect(controller.CreateVolume(createRequest({ capacity_range: { required_bytes: 1, limit_bytes: 0 } }), context)).resolves.toEqual(first);
      expect(store.keys()).toEqual(['team-a/data/']);
    });

    it('answers ALREADY_EXISTS for the same name with a bigger capacity or another reclaim policy', async () => {
      await controller.CreateVolume(createRequest(), context);
      await expect(controller.CreateVolume(createRequest({ capacity_range: { required_bytes: 2 * GiB, limit_bytes: 0 } }), context)).rejects.toEqual(
        codeAndMessage('ALREADY_EXISTS', 'same name but a different capacity'),
      );
      await expect(controller.CreateVolume(createRequest({ capacity_range: { required_bytes: 0, limit_bytes: 1 << 20 } }), context)).rejects.toEqual(
        codeAndMessage('ALREADY_EXISTS', 'different capacity'),
      );
      await expect(controller.CreateVolume(createRequest({ parameters: { bucket: BUCKET, reclaim: 'delete', ...pvcMetadata } }), context)).rejects.toEqual(
        codeAndMessage('ALREADY_EXISTS', 'reclaim retain'),
      );
    });

    it('answers ALREADY_EXISTS naming the volume that owns the prefix', async () => {
      const shared = { bucket: BUCKET, prefixTemplate: 'shared' };
      await controller.CreateVolume(createRequest({ name: 'pvc-1', parameters: shared }), context);
      await expect(controller.CreateVolume(createRequest({ name: 'pvc-2', parameters: shared }), context)).rejects.toEqual(
        codeAndMessage('ALREADY_EXISTS', 'prefix shared/ of bucket volumes already belongs to volume pvc-1'),
      );
    });

    it('adopts a prefix that already holds data nobody owns', async () => {
      await putObjects('team-a/data/', 3);
      await controller.CreateVolume(createRequest(), context);
      expect(store.keys()).toEqual(['team-a/data/', 'team-a/data/file-00000', 'team-a/data/file-00001', 'team-a/data/file-00002']);
    });

    it.each<[string, Partial<CreateVolumeRequest__Output>, string | RegExp]>([
      ['no name', { name: '' }, 'name is required'],
      ['a control character in the name', { name: 'a\u0001b' }, 'name must not contain control characters'],
      ['no capabilities', { volume_capabilities: [] }, 'volume_capabilities is required'],
      ['block access', { volume_capabilities: [{ access_type: 'block', block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }] }, 'granary volumes are filesystems'],
      ['an UNKNOWN access mode', { volume_capabilities: [capability('UNKNOWN')] }, /access_mode\.mode "UNKNOWN" is not supported/],
      ['limit below required', { capacity_range: { required_bytes: 10, limit_bytes: 5 } }, 'capacity_range.limit_bytes (5) is smaller than required_bytes (10)'],
      ['a negative capacity', { capacity_range: { required_bytes: -1, limit_bytes: 0 } }, 'capacity_range.required_bytes must be a non-negative integer'],
      ['a content source', { volume_content_source: { type: 'volume', volume: { volume_id: 'volumes/x' } } }, 'volume_content_source is not supported'],
      ['no bucket parameter', { parameters: {} }, 'StorageClass parameter bucket is required'],
      ['a bad template', { parameters: { bucket: BUCKET, prefixTemplate: '${pvc.uid}' } }, 'unknown variable ${pvc.uid}'],
      ['an unknown parameter', { parameters: { bucket: BUCKET, reclaimPolicy: 'delete' } }, 'unknown StorageClass parameter "reclaimPolicy"'],
      ['a setuid file-mode in mountOptions', { parameters: { bucket: BUCKET, mountOptions: 'uid=0,file-mode=4755' } }, 'file-mode 4755 sets the setuid bit; granary never mounts setuid, setgid or sticky files: use 0755'],
      ['half a key pair in the secrets', { secrets: { accessKeyID: 'AKIA' } }, 'secrets must hold both accessKeyID and secretAccessKey'],
    ])('refuses %s with INVALID_ARGUMENT before touching the store', async (_case, overrides, message) => {
      await expect(controller.CreateVolume(createRequest(overrides), context)).rejects.toEqual(codeAndMessage('INVALID_ARGUMENT', message));
      expect(opened).toEqual([]);
    });

    it('answers ABORTED to a second CreateVolume of the same name while the first runs', async () => {
      const results = await Promise.allSettled([controller.CreateVolume(createRequest(), context), controller.CreateVolume(createRequest(), context)]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'ABORTED' });
      // Once the first finished, a retry succeeds.
      await expect(controller.CreateVolume(createRequest(), context)).resolves.toBeDefined();
    });

    it.each([
      ['checkBucket', 'AccessDenied', 'PERMISSION_DENIED', 'check the accessKeyID/secretAccessKey secret'],
      ['checkBucket', 'Unavailable', 'UNAVAILABLE', 'the object store is unreachable'],
      ['checkBucket', 'NoSuchBucket', 'FAILED_PRECONDITION', 'create the bucket'],
      ['head', 'Unavailable', 'UNAVAILABLE', 'reading the volume marker team-a/data/'],
      ['put', 'AccessDenied', 'PERMISSION_DENIED', 'writing the volume marker team-a/data/'],
    ] as const)('maps %s failing with %s to %s', async (operation, failure, code, message) => {
      store.failNext(operation, failure);
      await expect(controller.CreateVolume(createRequest(), context)).rejects.toEqual(codeAndMessage(code, message));
      // The lock is released after a failure: the retry goes through.
      await expect(controller.CreateVolume(createRequest(), context)).resolves.toBeDefined();
    });
  });

  describe('DeleteVolume', () => {
    const deleteRequest = (volumeId = 'volumes/team-a/data') => ({ volume_id: volumeId, secrets: {} });

    it('removes every object under the prefix, then the marker, with reclaim=delete', async () => {
      await controller.CreateVolume(createRequest({ parameters: { bucket: BUCKET, reclaim: 'delete', ...pvcMetadata } }), context);
      await putObjects('team-a/data/', 2500); // more than one listing page
      await putObjects('team-a/data/sub/', 3);
      await putObjects('team-a/data2/', 2); // a neighbour whose name starts the same
      await expect(controller.DeleteVolume(deleteRequest(), context)).resolves.toEqual({});
      expect(store.keys()).toEqual(['team-a/data2/file-00000', 'team-a/data2/file-00001']);
      // Deleting again is not an error.
      await expect(controller.DeleteVolume(deleteRequest(), context)).resolves.toEqual({});
    });

    it('keeps the data and releases the prefix with reclaim=retain, so another volume may adopt it', async () => {
      await controller.CreateVolume(createRequest(), context);
      await putObjects('team-a/data/', 3);
      await expect(controller.DeleteVolume(deleteRequest(), context)).resolves.toEqual({});
      expect(store.keys()).toHaveLength(4);
      expect((await store.head('team-a/data/')).metadata).toEqual({ [MARKER_METADATA.released]: 'pvc-1' });
      await expect(controller.CreateVolume(createRequest({ name: 'pvc-2' }), context)).resolves.toMatchObject({ volume: { volume_id: 'volumes/team-a/data' } });
    });

    it('keeps metadata granary does not own when releasing a marker', async () => {
      await store.put('team-a/data/', Buffer.alloc(0), { metadata: { owner: 'ml-team', [MARKER_METADATA.volume]: 'pvc-1' } });
      await controller.DeleteVolume(deleteRequest(), context);
      expect((await store.head('team-a/data/')).metadata).toEqual({ owner: 'ml-team', [MARKER_METADATA.released]: 'pvc-1' });
    });

    it('succeeds for a volume that does not exist, a static volume, a missing bucket and a whole bucket', async () => {
      await putObjects('models/llama/', 2); // a static volume: objects, no marker
      await expect(controller.DeleteVolume(deleteRequest('volumes/nothing/here'), context)).resolves.toEqual({});
      await expect(controller.DeleteVolume(deleteRequest('volumes/models/llama'), context)).resolves.toEqual({});
      await expect(controller.DeleteVolume(deleteRequest('no-such-bucket/x'), context)).resolves.toEqual({});
      opened = [];
      await expect(controller.DeleteVolume(deleteRequest('volumes'), context)).resolves.toEqual({});
      expect(opened).toEqual([]);
      expect(store.keys()).toEqual(['models/llama/file-00000', 'models/llama/file-00001']);
    });

    it.each(['', 'Bad_Bucket/x', 'volumes/../etc'])('refuses the malformed volume ID %j with INVALID_ARGUMENT', async (volumeId) => {
      await expect(controller.DeleteVolume(deleteRequest(volumeId), context)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    });

    it('reports objects it could not delete as INTERNAL, naming a few, and keeps the marker for the retry', async () => {
      const stubborn = new StubbornStore((key) => key.endsWith('7'));
      store = stubborn;
      build((bucket) => (bucket === BUCKET ? stubborn : new MissingBucketStore(bucket)));
      await controller.CreateVolume(createRequest({ parameters: { bucket: BUCKET, reclaim: 'delete', ...pvcMetadata } }), context);
      await putObjects('team-a/data/', 30);
      await expect(controller.DeleteVolume(deleteRequest(), context)).rejects.toEqual(
        codeAndMessage('INTERNAL', /3 object\(s\) under team-a\/data\/ could not be deleted \(team-a\/data\/file-00007, team-a\/data\/file-00017, team-a\/data\/file-00027\)/),
      );
      expect(store.keys()).toEqual(['team-a/data/', 'team-a/data/file-00007', 'team-a/data/file-00017', 'team-a/data/file-00027']);
    });

    it('keeps the marker when the sweep fails, so the retry deletes the rest', async () => {
      await controller.CreateVolume(createRequest({ parameters: { bucket: BUCKET, reclaim: 'delete', ...pvcMetadata } }), context);
      await putObjects('team-a/data/', 5);
      store.failNext('deleteMany', 'Unavailable');
      await expect(controller.DeleteVolume(deleteRequest(), context)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await expect(controller.DeleteVolume(deleteRequest(), context)).resolves.toEqual({});
      expect(store.keys()).toEqual([]);
    });

    it('checks the bucket first, so refused credentials never pass for a missing volume', async () => {
      await controller.CreateVolume(createRequest(), context);
      store.failNext('checkBucket', 'AccessDenied');
      await expect(controller.DeleteVolume(deleteRequest(), context)).rejects.toEqual(codeAndMessage('PERMISSION_DENIED', 'checking bucket volumes'));
      expect(store.keys()).toEqual(['team-a/data/']);
    });

    it('maps AccessDenied to PERMISSION_DENIED and answers ABORTED to a concurrent delete', async () => {
      await controller.CreateVolume(createRequest(), context);
      store.failNext('head', 'AccessDenied');
      await expect(controller.DeleteVolume(deleteRequest(), context)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
      const results = await Promise.allSettled([controller.DeleteVolume(deleteRequest(), context), controller.DeleteVolume(deleteRequest(), context)]);
      expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'ok'))).toEqual(['ok', 'ABORTED']);
    });
  });

  describe('ValidateVolumeCapabilities', () => {
    it('confirms every mount access mode of an existing volume', async () => {
      await controller.CreateVolume(createRequest(), context);
      const capabilities = (['SINGLE_NODE_WRITER', 'MULTI_NODE_READER_ONLY', 'MULTI_NODE_MULTI_WRITER'] as const).map((mode) => capability(mode));
      const response = await controller.ValidateVolumeCapabilities(validateRequest({ volume_capabilities: capabilities, volume_context: { cache: 'true' } }), context);
      expect(response).toEqual({ confirmed: { volume_capabilities: capabilities, volume_context: { cache: 'true' }, parameters: {}, mutable_parameters: {} } });
    });

    it('finds a static volume by its objects', async () => {
      await putObjects('models/llama/', 1);
      await expect(controller.ValidateVolumeCapabilities(validateRequest({ volume_id: 'volumes/models/llama' }), context)).resolves.toHaveProperty('confirmed');
      await expect(controller.ValidateVolumeCapabilities(validateRequest({ volume_id: 'volumes' }), context)).resolves.toHaveProperty('confirmed');
    });

    it('leaves confirmed empty and says why for block access or bad parameters', async () => {
      await controller.CreateVolume(createRequest(), context);
      const block: VolumeCapability__Output = { access_type: 'block', block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
      await expect(controller.ValidateVolumeCapabilities(validateRequest({ volume_capabilities: [capability(), block] }), context)).resolves.toEqual({
        message: expect.stringMatching(/^volume_capabilities\[1\]: granary volumes are filesystems/),
      });
      await expect(controller.ValidateVolumeCapabilities(validateRequest({ parameters: { bucket: BUCKET, cache: 'maybe' } }), context)).resolves.toEqual({
        message: expect.stringContaining('cache must be true or false'),
      });
    });

    it('answers NOT_FOUND for a volume that does not exist or whose bucket does not', async () => {
      await expect(controller.ValidateVolumeCapabilities(validateRequest({ volume_id: 'volumes/nothing' }), context)).rejects.toEqual(codeAndMessage('NOT_FOUND', 'no volume marker and no objects under nothing/'));
      await expect(controller.ValidateVolumeCapabilities(validateRequest({ volume_id: 'no-such-bucket/x' }), context)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(controller.ValidateVolumeCapabilities(validateRequest({ volume_id: 'no-such-bucket' }), context)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('requires the volume ID and capabilities', async () => {
      await expect(controller.ValidateVolumeCapabilities(validateRequest({ volume_id: '' }), context)).rejects.toEqual(codeAndMessage('INVALID_ARGUMENT', 'volume_id is required'));
      await expect(controller.ValidateVolumeCapabilities(validateRequest({ volume_capabilities: [] }), context)).rejects.toEqual(codeAndMessage('INVALID_ARGUMENT', 'volume_capabilities is required'));
    });

    it('maps Unavailable to UNAVAILABLE', async () => {
      store.failNext('head', 'Unavailable');
      await expect(controller.ValidateVolumeCapabilities(validateRequest(), context)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    });
  });
});
