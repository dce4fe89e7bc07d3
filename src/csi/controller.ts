import { isObjectStoreError } from '../objectstore/errors';
import type { ObjectInfo, ObjectStore } from '../objectstore/store';
import { capabilityProblem, validateVolumeCapabilities } from './capabilities';
import { CsiError, toCsiError, type CsiCode } from './errors';
import type { CapacityRange__Output } from './generated/csi/v1/CapacityRange';
import type { ControllerGetCapabilitiesResponse } from './generated/csi/v1/ControllerGetCapabilitiesResponse';
import type { CreateVolumeRequest__Output } from './generated/csi/v1/CreateVolumeRequest';
import type { CreateVolumeResponse } from './generated/csi/v1/CreateVolumeResponse';
import type { DeleteVolumeRequest__Output } from './generated/csi/v1/DeleteVolumeRequest';
import type { DeleteVolumeResponse } from './generated/csi/v1/DeleteVolumeResponse';
import type { ValidateVolumeCapabilitiesRequest__Output } from './generated/csi/v1/ValidateVolumeCapabilitiesRequest';
import type { ValidateVolumeCapabilitiesResponse } from './generated/csi/v1/ValidateVolumeCapabilitiesResponse';
import { InFlight } from './inflight';
import { parseParameters, volumeContext, volumeLocation, type ReclaimPolicy } from './parameters';
import type { Rpc } from './rpc';
import { settingsFromSecrets, type StoreSettings } from './secrets';
import { formatVolumeId, parseVolumeId, type VolumeLocation } from './volume-id';

/** Opens the object store of one bucket with the settings from a request's secrets; the caller closes it. */
export type StoreFactory = (bucket: string, settings: StoreSettings) => ObjectStore;

/** What the controller service needs from the outside world. */
export interface ControllerDeps {
  /** Builds a store per call: each call may carry different credentials (CSI secrets). */
  openStore: StoreFactory;
  /** The per-volume operation set; shared with the node service when one process serves both. */
  inflight?: InFlight;
}

/** The CSI Controller service. */
export type ControllerService = {
  CreateVolume: Rpc<CreateVolumeRequest__Output, CreateVolumeResponse>;
  DeleteVolume: Rpc<DeleteVolumeRequest__Output, DeleteVolumeResponse>;
  ValidateVolumeCapabilities: Rpc<ValidateVolumeCapabilitiesRequest__Output, ValidateVolumeCapabilitiesResponse>;
  ControllerGetCapabilities: Rpc<unknown, ControllerGetCapabilitiesResponse>;
};

/**
 * User metadata on a volume's directory marker (the empty object whose key is the prefix). It is
 * the only record of a dynamically provisioned volume: the bucket stays a plain bucket and the
 * controller keeps no state of its own.
 */
export const MARKER_METADATA = {
  /** The CreateVolume name that owns the prefix (URI-encoded: S3 metadata is ASCII). */
  volume: 'granary-volume',
  /** The capacity reported for the volume, in bytes (decimal). */
  capacity: 'granary-capacity',
  /** The reclaim policy DeleteVolume applies (DeleteVolume receives no parameters). */
  reclaim: 'granary-reclaim',
  /** Left by DeleteVolume of a retained volume: the name that used to own the prefix (not an owner). */
  released: 'granary-released',
} as const;

/** Objects asked for per listing page while deleting a volume (S3's maximum). */
export const DELETE_LIST_PAGE_SIZE = 1000;

/** How many keys that could not be deleted an error message lists. */
export const FAILED_KEYS_SHOWN = 5;

/** Longest CreateVolume name accepted, in bytes (the spec's size limit for string fields). */
export const MAX_VOLUME_NAME_BYTES = 128;

/** The owner recorded on a marker. */
interface MarkerOwner {
  name: string;
  capacityBytes: number;
  reclaim: ReclaimPolicy;
}

/** Characters the spec bans from a volume name (CreateVolumeRequest.name). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const BANNED_NAME_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

function invalid(message: string): CsiError {
  return new CsiError('INVALID_ARGUMENT', message);
}

function validateName(name: string): void {
  if (!name) throw invalid('name is required: the CO sets it to make CreateVolume idempotent');
  if (BANNED_NAME_CHARACTERS.test(name)) throw invalid('name must not contain control characters');
  if (Buffer.byteLength(name) > MAX_VOLUME_NAME_BYTES) throw invalid(`name is longer than ${MAX_VOLUME_NAME_BYTES} bytes`);
}

/**
 * Checks a capacity range and returns the capacity granary reports for it. S3 has no capacity
 * and granary enforces none, so any range is satisfiable: the volume reports the bytes asked for
 * (csi-sanity accepts 0 or at least required_bytes; csi-provisioner puts the reported value in
 * the PV), or 0, the spec's "unknown", when nothing was asked.
 */
function capacityFor(range: CapacityRange__Output | null): number {
  const required = range?.required_bytes ?? 0;
  const limit = range?.limit_bytes ?? 0;
  for (const [field, value] of [['required_bytes', required], ['limit_bytes', limit]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) throw invalid(`capacity_range.${field} must be a non-negative integer, not ${value}`);
  }
  // A limit below the requirement is a malformed request, not a range granary cannot serve, so
  // INVALID_ARGUMENT rather than OUT_OF_RANGE (which the spec keeps for ranges the plugin refuses).
  if (limit > 0 && required > limit) throw invalid(`capacity_range.limit_bytes (${limit}) is smaller than required_bytes (${required})`);
  return required;
}

/** True when an existing volume of `capacityBytes` satisfies the requested range. */
function capacityCompatible(capacityBytes: number, range: CapacityRange__Output | null): boolean {
  const required = range?.required_bytes ?? 0;
  const limit = range?.limit_bytes ?? 0;
  return capacityBytes >= required && (limit === 0 || capacityBytes <= limit);
}

/** Reads the owner a marker records, or undefined when it records none (static or released volume). */
function ownerOf(marker: ObjectInfo | undefined): MarkerOwner | undefined {
  const metadata = marker?.metadata ?? {};
  const encoded = metadata[MARKER_METADATA.volume];
  if (!encoded) return undefined;
  let name = encoded;
  try {
    name = decodeURIComponent(encoded);
  } catch {
    // A hand-edited value that is not URI-encoded: compare it as written.
  }
  const capacity = Number(metadata[MARKER_METADATA.capacity] ?? '0');
  return {
    name,
    capacityBytes: Number.isSafeInteger(capacity) && capacity >= 0 ? capacity : 0,
    // Anything but an explicit 'delete' keeps the data: the safe reading of a damaged marker.
    reclaim: metadata[MARKER_METADATA.reclaim] === 'delete' ? 'delete' : 'retain',
  };
}

/** Metadata of a marker without any of granary's keys (what a retained volume keeps of its marker). */
function withoutOwner(metadata: Record<string, string> | undefined): Record<string, string> {
  const granaryKeys = new Set<string>(Object.values(MARKER_METADATA));
  return Object.fromEntries(Object.entries(metadata ?? {}).filter(([key]) => !granaryKeys.has(key)));
}

/** Runs one object-store step, turning its failure into a CsiError that says what was being done and where. */
async function step<T>(context: string, work: Promise<T>, codes: Partial<Record<string, CsiCode>> = {}): Promise<T> {
  try {
    return await work;
  } catch (error) {
    const mapped = toCsiError(error, context);
    const override = isObjectStoreError(error) ? codes[error.code] : undefined;
    throw override ? new CsiError(override, mapped.message, { cause: error }) : mapped;
  }
}

/** Heads the marker of `location`; undefined when there is none (NotFound). */
async function readMarker(store: ObjectStore, location: VolumeLocation, context: string): Promise<ObjectInfo | undefined> {
  try {
    return await store.head(location.prefix);
  } catch (error) {
    if (isObjectStoreError(error, 'NotFound')) return undefined;
    throw toCsiError(error, `${context}: reading the volume marker ${location.prefix} in ${store.location}`);
  }
}

/** Opens a store for one call and closes it whatever happens. */
async function withStore<T>(deps: ControllerDeps, bucket: string, settings: StoreSettings, work: (store: ObjectStore) => Promise<T>): Promise<T> {
  const store = deps.openStore(bucket, settings);
  try {
    return await work(store);
  } finally {
    store.close();
  }
}

/** Builds the Controller service over an injected store factory. */
export function createControllerService(deps: ControllerDeps): ControllerService {
  const inflight = deps.inflight ?? new InFlight();

  /** Holds the name and the volume ID, so neither a retry nor a delete of the same prefix interleaves. */
  const lockCreate = <T>(name: string, volumeId: string, work: () => Promise<T>) =>
    inflight.run(name, 'CreateVolume', () => (volumeId === name ? work() : inflight.run(volumeId, 'CreateVolume', work)));

  const CreateVolume: ControllerService['CreateVolume'] = async (request, { log }) => {
    // 1. Validate everything before touching the store.
    const name = request.name;
    validateName(name);
    validateVolumeCapabilities(request.volume_capabilities, 'volume_capabilities');
    const capacityBytes = capacityFor(request.capacity_range);
    if (request.volume_content_source) {
      throw invalid('volume_content_source is not supported: granary cannot clone volumes or restore snapshots (copy the objects with any S3 tool instead)');
    }
    const parameters = parseParameters(request.parameters);
    const location = volumeLocation(parameters, name);
    const settings = settingsFromSecrets(request.secrets);
    const volumeId = formatVolumeId(location);
    const context = `CreateVolume ${name}`;
    const response = (capacity: number): CreateVolumeResponse => ({
      volume: { volume_id: volumeId, capacity_bytes: capacity, volume_context: volumeContext(location, parameters) },
    });

    // 2. Lock, 3. check the bucket, 4. read the marker, 5. adopt or refuse, 6. write the marker.
    return lockCreate(name, volumeId, () =>
      withStore(deps, location.bucket, settings, async (store) => {
        // A missing bucket is the StorageClass's (or the admin's) to fix, not a retryable state of
        // this volume: FAILED_PRECONDITION, because the spec keeps NOT_FOUND in CreateVolume for
        // "Source does not exist" (volume_content_source), which would send the reader astray.
        await step(`${context}: checking bucket ${location.bucket} at ${store.location}`, store.checkBucket(), { NoSuchBucket: 'FAILED_PRECONDITION' });
        const owner = ownerOf(await readMarker(store, location, context));
        if (owner && owner.name !== name) {
          // Spec, CreateVolume errors: "Volume already exists but is incompatible | 6 ALREADY_EXISTS".
          throw new CsiError(
            'ALREADY_EXISTS',
            `${context}: prefix ${location.prefix} of bucket ${location.bucket} already belongs to volume ${owner.name}; give this StorageClass a different prefixTemplate or basePrefix, or delete ${owner.name}`,
          );
        }
        if (owner) {
          if (!capacityCompatible(owner.capacityBytes, request.capacity_range) || owner.reclaim !== parameters.reclaim) {
            // Spec: "Indicates that a volume corresponding to the specified volume `name` already exists
            // but is incompatible with the specified `capacity_range`, `volume_capabilities`, `parameters`".
            throw new CsiError(
              'ALREADY_EXISTS',
              `${context}: volume exists with the same name but a different capacity or reclaim policy (${owner.capacityBytes} bytes, reclaim ${owner.reclaim}); use a different name or the original settings`,
            );
          }
          // Spec: "If a volume corresponding to the specified volume `name` already exists, ... and is
          // compatible with the specified `capacity_range`, `volume_capabilities`, `parameters` ... the
          // Plugin MUST reply `0 OK` with the corresponding `CreateVolumeResponse`."
          log.info({ volumeId }, 'volume already exists; returning it');
          return response(owner.capacityBytes);
        }
        // No owner: a new prefix, existing data nobody owns (adopted on purpose: a PVC over a dataset
        // written by other tools), or a retained volume released by DeleteVolume. The head/put pair is
        // not atomic across processes; csi-provisioner's leader election keeps one controller active.
        await step(
          `${context}: writing the volume marker ${location.prefix} in ${store.location}`,
          store.put(location.prefix, Buffer.alloc(0), {
            metadata: {
              [MARKER_METADATA.volume]: encodeURIComponent(name),
              [MARKER_METADATA.capacity]: String(capacityBytes),
              [MARKER_METADATA.reclaim]: parameters.reclaim,
            },
          }),
        );
        log.info({ volumeId, capacityBytes, reclaim: parameters.reclaim }, 'volume created');
        return response(capacityBytes);
      }),
    );
  };

  const DeleteVolume: ControllerService['DeleteVolume'] = async (request, { log }) => {
    const location = parseVolumeId(request.volume_id);
    const settings = settingsFromSecrets(request.secrets);
    const volumeId = request.volume_id;
    const context = `DeleteVolume ${volumeId}`;
    // A whole bucket is only ever a static volume: granary never deletes or edits a bucket.
    if (location.prefix === '') return {};

    return inflight.run(volumeId, 'DeleteVolume', () =>
      withStore(deps, location.bucket, settings, async (store) => {
        // The bucket first: a HEAD answer has no body, so only checkBucket tells "no marker" apart from
        // "credentials refused" on servers that answer 404 to an unknown access key.
        if (!(await bucketExists(store, `${context}: checking bucket ${location.bucket} at ${store.location}`))) {
          // Spec: "If a volume corresponding to the specified `volume_id` does not exist or the artifacts
          // associated with the volume do not exist anymore, the Plugin MUST reply `0 OK`." No bucket, no volume.
          return {};
        }
        const marker = await readMarker(store, location, context);
        const owner = ownerOf(marker);
        if (!owner) {
          // Same spec line: no marker (static volume, or already deleted) or no owner (already released).
          log.info({ volumeId }, 'no volume marker owns this prefix; nothing to delete');
          return {};
        }
        if (owner.reclaim === 'retain') {
          // Keep the data; replace the ownership with a note of who held the prefix, so a later
          // CreateVolume may adopt it again. The note also keeps the metadata non-empty: some
          // S3-compatible servers (versitygw) keep a directory object's old metadata when a PUT carries none.
          await step(
            `${context}: releasing the volume marker ${location.prefix} in ${store.location}`,
            store.put(location.prefix, Buffer.alloc(0), { metadata: { ...withoutOwner(marker?.metadata), [MARKER_METADATA.released]: encodeURIComponent(owner.name) } }),
          );
          log.info({ volumeId, volume: owner.name }, 'volume released; its objects are retained');
          return {};
        }
        const deleted = await deleteObjectsUnder(store, location, context);
        // The marker goes last: if the sweep fails, the marker still says reclaim=delete and the CO's
        // retry sweeps again, instead of finding an unowned prefix and leaking its objects.
        await step(`${context}: deleting the volume marker ${location.prefix} in ${store.location}`, store.delete(location.prefix));
        log.info({ volumeId, volume: owner.name, deleted }, 'volume deleted with its objects');
        return {};
      }),
    );
  };

  const ValidateVolumeCapabilities: ControllerService['ValidateVolumeCapabilities'] = async (request) => {
    const location = parseVolumeId(request.volume_id);
    if (request.volume_capabilities.length === 0) throw invalid('volume_capabilities is required: give at least one volume capability');
    const settings = settingsFromSecrets(request.secrets);
    const context = `ValidateVolumeCapabilities ${request.volume_id}`;

    const exists = await withStore(deps, location.bucket, settings, (store) => volumeExists(store, location, context));
    // Spec, ValidateVolumeCapabilities errors: "Volume does not exist | 5 NOT_FOUND".
    if (!exists) throw new CsiError('NOT_FOUND', `${context}: no volume marker and no objects under ${location.prefix || 'the bucket root'} in bucket ${location.bucket}`);

    const problems = request.volume_capabilities.map((capability, index) => capabilityProblem(capability, `volume_capabilities[${index}]`)).filter((p) => p !== undefined);
    let parametersProblem: string | undefined;
    if (Object.keys(request.parameters).length > 0) {
      try {
        parseParameters(request.parameters);
      } catch (error) {
        parametersProblem = error instanceof Error ? error.message : String(error);
      }
    }
    const message = [...problems, ...(parametersProblem ? [parametersProblem] : [])].join('; ');
    // Spec: "confirmed ... This field SHALL only be set if all the fields requested are supported";
    // otherwise `message` says why, and the call itself succeeds.
    if (message) return { message };
    return {
      confirmed: {
        volume_capabilities: request.volume_capabilities,
        volume_context: request.volume_context,
        parameters: request.parameters,
        mutable_parameters: {},
      },
    };
  };

  const ControllerGetCapabilities: ControllerService['ControllerGetCapabilities'] = async () => ({
    // Only CREATE_DELETE_VOLUME. What granary leaves out, and why:
    // - PUBLISH_UNPUBLISH_VOLUME: there is nothing to attach; every node reaches the bucket over the
    //   network, so a VolumeAttachment round-trip per pod would add latency and no work.
    // - LIST_VOLUMES: volumes live in any bucket of any StorageClass and the controller keeps no
    //   state, so it cannot enumerate them without scanning buckets it does not know.
    // - GET_CAPACITY: an object store has no capacity to report; capacity tracking would be fiction.
    // - EXPAND_VOLUME: sizes are not enforced, so there is nothing to expand.
    // - CLONE_VOLUME, CREATE_DELETE_SNAPSHOT, LIST_SNAPSHOTS: S3 has no point-in-time copy of a
    //   prefix; a clone would be an unbounded object-by-object copy inside one RPC.
    capabilities: [{ rpc: { type: 'CREATE_DELETE_VOLUME' } }],
  });

  return { CreateVolume, DeleteVolume, ValidateVolumeCapabilities, ControllerGetCapabilities };
}

/** True when the bucket exists and the volume has a marker or any object under its prefix (a whole bucket: just the bucket). */
async function volumeExists(store: ObjectStore, location: VolumeLocation, context: string): Promise<boolean> {
  if (!(await bucketExists(store, `${context}: checking bucket ${location.bucket} at ${store.location}`))) return false;
  if (location.prefix === '' || (await readMarker(store, location, context))) return true;
  const page = await step(`${context}: listing ${location.prefix} in ${store.location}`, store.list({ prefix: location.prefix, maxKeys: 1 }));
  return page.objects.length > 0 || page.commonPrefixes.length > 0;
}

/** True when the bucket exists, false when the store says it does not; any other failure becomes a CsiError. */
async function bucketExists(store: ObjectStore, context: string): Promise<boolean> {
  try {
    await store.checkBucket();
    return true;
  } catch (error) {
    if (isObjectStoreError(error, 'NoSuchBucket')) return false;
    throw toCsiError(error, context);
  }
}

/** Deletes every object under the prefix but the marker, page by page; returns how many went. */
async function deleteObjectsUnder(store: ObjectStore, location: VolumeLocation, context: string): Promise<number> {
  const failed: string[] = [];
  let deleted = 0;
  let continuationToken: string | undefined;
  do {
    // The continuation token is the last key returned, so deleting a page before asking for the
    // next one does not skip anything.
    const page = await step(
      `${context}: listing objects under ${location.prefix} in ${store.location}`,
      store.list({ prefix: location.prefix, maxKeys: DELETE_LIST_PAGE_SIZE, ...(continuationToken !== undefined && { continuationToken }) }),
    );
    const keys = page.objects.map((object) => object.key).filter((key) => key !== location.prefix);
    if (keys.length > 0) {
      const notDeleted = await step(`${context}: deleting objects under ${location.prefix} in ${store.location}`, store.deleteMany(keys));
      failed.push(...notDeleted);
      deleted += keys.length - notDeleted.length;
    }
    continuationToken = page.nextToken;
  } while (continuationToken !== undefined);
  if (failed.length > 0) {
    const shown = failed.slice(0, FAILED_KEYS_SHOWN).join(', ');
    throw new CsiError(
      'INTERNAL',
      `${context}: ${failed.length} object(s) under ${location.prefix} could not be deleted (${shown}${failed.length > FAILED_KEYS_SHOWN ? ', ...' : ''}); check the bucket policy allows s3:DeleteObject, then the CO retries`,
    );
  }
  return deleted;
}
