import { createHash } from 'node:crypto';
import { LOG_LEVELS } from '../config/log-levels';
import { isModeText, specialBitsProblem } from '../config/permission-mode';
import { CsiError } from './errors';
import { bucketNameProblem, formatVolumeId, MAX_VOLUME_ID_BYTES, prefixProblem, type VolumeLocation } from './volume-id';

/**
 * StorageClass parameters granary reads, each with its default:
 *
 * | parameter        | default                                                     | meaning |
 * |------------------|-------------------------------------------------------------|---------|
 * | `bucket`         | (required)                                                  | bucket that holds the volumes |
 * | `prefixTemplate` | `${pvc.namespace}/${pvc.name}` with extra create metadata, else `${pv.name}` | key prefix of each volume |
 * | `basePrefix`     | none                                                        | prefix put before every rendered template |
 * | `reclaim`        | `retain`                                                    | `delete` removes the objects on DeleteVolume; `retain` keeps them |
 * | `cache`          | `true`                                                      | read through the cluster cache (passed to the node in volume_context) |
 * | `mountOptions`   | none                                                        | comma-separated granary mount options, see MOUNT_OPTIONS (passed to the node in volume_context) |
 */
export const PARAMETERS = {
  bucket: 'bucket',
  prefixTemplate: 'prefixTemplate',
  basePrefix: 'basePrefix',
  reclaim: 'reclaim',
  cache: 'cache',
  mountOptions: 'mountOptions',
} as const;

/** Parameter keys csi-provisioner adds or reserves; they are allowed next to granary's own. */
export const PROVISIONER_KEY_PREFIX = 'csi.storage.k8s.io/';

/** The keys csi-provisioner's --extra-create-metadata adds to CreateVolume parameters. */
export const EXTRA_CREATE_METADATA = {
  pvcNamespace: 'csi.storage.k8s.io/pvc/namespace',
  pvcName: 'csi.storage.k8s.io/pvc/name',
  pvName: 'csi.storage.k8s.io/pv/name',
} as const;

/** Keys of the volume_context CreateVolume returns; the node service reads them at stage time. */
export const VOLUME_CONTEXT = {
  bucket: 'bucket',
  /** The volume's key prefix, ending with '/'. */
  prefix: 'prefix',
  /** 'true' or 'false'. */
  cache: 'cache',
  /** Comma-separated granary mount options; absent when none were given. */
  mountOptions: 'mountOptions',
  /**
   * "true" lets a volume with an empty prefix (volume ID `bucket`) mount the whole bucket; absent or "false"
   * refuses it. Written by hand in a static PersistentVolume's volumeAttributes: CreateVolume never makes such a volume.
   */
  allowWholeBucket: 'allowWholeBucket',
} as const;

/** Variables a prefix template may use. */
export const TEMPLATE_VARIABLES = ['pvc.namespace', 'pvc.name', 'pv.name'] as const;

/** One variable of a prefix template. */
export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number];

/** Template used when csi-provisioner passes the PVC's namespace and name: a readable layout. */
export const PVC_PREFIX_TEMPLATE = '${pvc.namespace}/${pvc.name}';

/** Template used without extra create metadata: the PV name is all CreateVolume knows. */
export const PV_PREFIX_TEMPLATE = '${pv.name}';

/** What DeleteVolume does with the objects of a volume. */
export type ReclaimPolicy = 'retain' | 'delete';

const RECLAIM_POLICIES: readonly ReclaimPolicy[] = ['retain', 'delete'];

/** Default reclaim policy: keeping data is the safe choice when nobody said otherwise. */
export const DEFAULT_RECLAIM: ReclaimPolicy = 'retain';

/** Default of the cache parameter: the cache is the point of granary. */
export const DEFAULT_CACHE = true;

/** Length of the hash that replaces the end of a prefix too long for a volume ID (hex characters). */
export const SHORTENED_PREFIX_HASH_CHARS = 16;

/** Validated StorageClass parameters of one CreateVolume call. */
export interface VolumeParameters {
  bucket: string;
  /** The template in force (the given one or the default chosen from the available metadata). */
  prefixTemplate: string;
  /** Prefix put before the rendered template, without trailing '/'; '' when none. */
  basePrefix: string;
  reclaim: ReclaimPolicy;
  cache: boolean;
  /** Mount options as given (comma-separated), or undefined. */
  mountOptions?: string;
  /** The PVC's namespace and name, when csi-provisioner passed them (--extra-create-metadata). */
  pvc?: { namespace: string; name: string };
}

function invalid(message: string): CsiError {
  return new CsiError('INVALID_ARGUMENT', message);
}

/** A mount option: `name` or `name=value`, with no separators, spaces or quotes that could smuggle more. */
const MOUNT_OPTION = /^[A-Za-z0-9_.-]+(=[A-Za-z0-9_.:/@+-]*)?$/;

/**
 * The options a StorageClass's mountOptions may set, each the `granary mount` flag of the same name
 * (`uid=1000` becomes `--uid 1000`). The one list both the controller (CreateVolume) and the node (NodeStage) check.
 */
export const MOUNT_OPTIONS = ['uid', 'gid', 'file-mode', 'dir-mode', 'log-level', 'metadata-deadline', 'read-deadline', 'write-deadline'] as const;

/** The name of an allowed mount option. */
export type MountOptionName = (typeof MOUNT_OPTIONS)[number];

/** One validated mount option; `value` is in the form `granary mount` parses. */
export interface MountOption {
  name: MountOptionName;
  value: string;
}

/** What a deadline option accepts, for messages. */
const DEADLINE_ACCEPTS = 'milliseconds from 100 to 86400000 (a day)';

/** Largest uid or gid `granary mount` accepts ((uid_t)-1 means "no change" to the kernel). */
const MAX_ID = 0xfffffffe;

/**
 * Per option: what it accepts (for messages), its value in canonical form or undefined when malformed,
 * and why a well-formed value is still refused (a mode with setuid, setgid or sticky bits).
 */
const MOUNT_OPTION_VALUES: Record<MountOptionName, { accepts: string; canonical: (value: string) => string | undefined; problem?: (canonical: string) => string | undefined }> = {
  uid: { accepts: `a user id from 0 to ${MAX_ID}`, canonical: canonicalId },
  gid: { accepts: `a group id from 0 to ${MAX_ID}`, canonical: canonicalId },
  'file-mode': { accepts: 'octal permission bits such as 0644', canonical: canonicalMode, problem: (value) => specialBitsProblem('file-mode', Number.parseInt(value, 8), value) },
  'dir-mode': { accepts: 'octal permission bits such as 0755', canonical: canonicalMode, problem: (value) => specialBitsProblem('dir-mode', Number.parseInt(value, 8), value) },
  'log-level': { accepts: `one of ${LOG_LEVELS.join(', ')}`, canonical: (value) => ((LOG_LEVELS as readonly string[]).includes(value) ? value : undefined) },
  'metadata-deadline': { accepts: DEADLINE_ACCEPTS, canonical: canonicalDeadline },
  'read-deadline': { accepts: DEADLINE_ACCEPTS, canonical: canonicalDeadline },
  'write-deadline': { accepts: DEADLINE_ACCEPTS, canonical: canonicalDeadline },
};

/** The milliseconds a deadline option accepts: what `granary mount` accepts (at least 100 ms), up to a day. */
const DEADLINE_MIN_MS = 100;
const DEADLINE_MAX_MS = 86_400_000;

function canonicalDeadline(value: string): string | undefined {
  if (!/^\d{1,9}$/.test(value)) return undefined;
  const ms = Number(value);
  return ms >= DEADLINE_MIN_MS && ms <= DEADLINE_MAX_MS ? String(ms) : undefined;
}

function canonicalId(value: string): string | undefined {
  if (!/^\d{1,10}$/.test(value) || Number(value) > MAX_ID) return undefined;
  return String(Number(value));
}

function canonicalMode(value: string): string | undefined {
  // The same grammar as `granary mount --file-mode`.
  return isModeText(value) ? value : undefined;
}

/**
 * Parses comma-separated mount options (`uid=1000,file-mode=0640`) against MOUNT_OPTIONS; throws
 * INVALID_ARGUMENT naming the option and what is allowed. `where` names the input in messages.
 */
export function parseMountOptions(text: string, where: string): MountOption[] {
  const options: MountOption[] = [];
  for (const raw of text.split(',')) {
    const option = raw.trim();
    if (!MOUNT_OPTION.test(option)) {
      throw invalid(`${where} must be comma-separated options of the form name or name=value; ${JSON.stringify(raw)} is not`);
    }
    const separator = option.indexOf('=');
    const name = separator < 0 ? option : option.slice(0, separator);
    const value = separator < 0 ? undefined : option.slice(separator + 1);
    if (!(MOUNT_OPTIONS as readonly string[]).includes(name)) {
      throw invalid(`${where} has the unknown option ${JSON.stringify(name)}; granary accepts ${MOUNT_OPTIONS.map((known) => `${known}=...`).join(', ')}`);
    }
    const known = name as MountOptionName;
    const rule = MOUNT_OPTION_VALUES[known];
    const canonical = value === undefined ? undefined : rule.canonical(value);
    const problem = canonical === undefined ? `${known} takes ${rule.accepts}` : rule.problem?.(canonical);
    if (canonical === undefined || problem !== undefined) throw invalid(`${where} option ${JSON.stringify(option)} is invalid: ${problem}`);
    if (options.some((earlier) => earlier.name === known)) throw invalid(`${where} sets ${known} more than once`);
    options.push({ name: known, value: canonical });
  }
  return options;
}

/**
 * Refuses a volume whose prefix is empty (volume ID `bucket`, `bucket/`, `bucket//`): it mounts every
 * object in the bucket, so it must say so with volume_context allowWholeBucket "true". Checks that
 * value is true or false whatever the prefix; throws INVALID_ARGUMENT saying how to allow it.
 */
export function checkWholeBucket(location: VolumeLocation, volumeId: string, context: Record<string, string> | undefined): void {
  const key = VOLUME_CONTEXT.allowWholeBucket;
  const value = context?.[key];
  if (value !== undefined && value !== 'true' && value !== 'false') throw invalid(`volume_context ${key} must be true or false (default false), not ${JSON.stringify(value)}`);
  if (location.prefix !== '' || value === 'true') return;
  throw invalid(
    `volume_id ${JSON.stringify(volumeId)} has an empty prefix: it would mount all of bucket ${location.bucket}, which granary does only when the volume allows it; ` +
      `to mount the whole bucket set volumeAttributes ${key}: "true" on the PersistentVolume (volumeHandle ${location.bucket}), else name a prefix (${location.bucket}/PREFIX)`,
  );
}

/** Why `template` is not a valid prefix template (unknown variable, unclosed `${`), or undefined. */
export function templateProblem(template: string): string | undefined {
  if (template.trim() === '') return 'it is empty';
  const unclosed = template.replace(/\$\{[^}]*\}/g, '');
  if (unclosed.includes('${')) return 'it has a "${" without a closing "}"';
  for (const match of template.matchAll(/\$\{([^}]*)\}/g)) {
    const variable = match[1] ?? '';
    if (!(TEMPLATE_VARIABLES as readonly string[]).includes(variable)) {
      return `it uses the unknown variable \${${variable}}; the known ones are ${TEMPLATE_VARIABLES.map((v) => `\${${v}}`).join(', ')}`;
    }
  }
  return undefined;
}

/** Reads and validates a CreateVolume's StorageClass parameters; throws INVALID_ARGUMENT naming the parameter and what it accepts. */
export function parseParameters(parameters: Record<string, string> | undefined): VolumeParameters {
  const given = parameters ?? {};
  const known = Object.values(PARAMETERS) as string[];
  for (const key of Object.keys(given)) {
    if (key === VOLUME_CONTEXT.allowWholeBucket) {
      throw invalid(`${key} is not a StorageClass parameter: every volume a StorageClass creates gets its own prefix; a whole-bucket volume is a static PersistentVolume with volumeAttributes ${key}: "true"`);
    }
    if (!known.includes(key) && !key.startsWith(PROVISIONER_KEY_PREFIX)) {
      throw invalid(`unknown StorageClass parameter ${JSON.stringify(key)}; granary knows ${known.join(', ')} (and csi-provisioner's ${PROVISIONER_KEY_PREFIX}* keys)`);
    }
  }

  const bucket = given[PARAMETERS.bucket]?.trim() ?? '';
  if (!bucket) throw invalid(`StorageClass parameter ${PARAMETERS.bucket} is required: the name of the bucket that holds the volumes`);
  const bucketProblem = bucketNameProblem(bucket);
  if (bucketProblem) throw invalid(`StorageClass parameter ${PARAMETERS.bucket} ${JSON.stringify(bucket)} is not a bucket name: ${bucketProblem}`);

  const pvcNamespace = given[EXTRA_CREATE_METADATA.pvcNamespace];
  const pvcName = given[EXTRA_CREATE_METADATA.pvcName];
  const pvc = pvcNamespace && pvcName ? { namespace: pvcNamespace, name: pvcName } : undefined;

  const prefixTemplate = given[PARAMETERS.prefixTemplate] ?? (pvc ? PVC_PREFIX_TEMPLATE : PV_PREFIX_TEMPLATE);
  const problem = templateProblem(prefixTemplate);
  if (problem) throw invalid(`StorageClass parameter ${PARAMETERS.prefixTemplate} ${JSON.stringify(prefixTemplate)} is invalid: ${problem}`);
  if (!pvc && /\$\{pvc\./.test(prefixTemplate)) {
    throw invalid(
      `StorageClass parameter ${PARAMETERS.prefixTemplate} uses \${pvc.namespace} or \${pvc.name}, but CreateVolume did not receive the PVC's namespace and name: run csi-provisioner with --extra-create-metadata, or use \${pv.name}`,
    );
  }

  const basePrefix = (given[PARAMETERS.basePrefix] ?? '').replace(/\/$/, '');
  const baseProblem = prefixProblem(basePrefix);
  if (baseProblem) throw invalid(`StorageClass parameter ${PARAMETERS.basePrefix} ${JSON.stringify(basePrefix)} is invalid: ${baseProblem}`);

  const reclaim = given[PARAMETERS.reclaim] ?? DEFAULT_RECLAIM;
  if (!(RECLAIM_POLICIES as readonly string[]).includes(reclaim)) {
    throw invalid(`StorageClass parameter ${PARAMETERS.reclaim} must be one of ${RECLAIM_POLICIES.join(', ')} (default ${DEFAULT_RECLAIM}), not ${JSON.stringify(reclaim)}`);
  }

  const cacheValue = given[PARAMETERS.cache] ?? String(DEFAULT_CACHE);
  if (cacheValue !== 'true' && cacheValue !== 'false') {
    throw invalid(`StorageClass parameter ${PARAMETERS.cache} must be true or false (default ${DEFAULT_CACHE}), not ${JSON.stringify(cacheValue)}`);
  }

  const mountOptions = given[PARAMETERS.mountOptions]?.trim();
  // Checked here as the node will check them, so a mistake fails CreateVolume rather than every pod's NodeStage.
  if (mountOptions) parseMountOptions(mountOptions, `StorageClass parameter ${PARAMETERS.mountOptions}`);

  return {
    bucket,
    prefixTemplate,
    basePrefix,
    reclaim: reclaim as ReclaimPolicy,
    cache: cacheValue === 'true',
    ...(mountOptions ? { mountOptions: mountOptions.split(',').map((o) => o.trim()).join(',') } : {}),
    ...(pvc ? { pvc } : {}),
  };
}

/**
 * Keeps a volume ID within the spec's 128 bytes: when bucket/prefix is longer, the end of the
 * rendered part is replaced by a hash of the whole prefix. The result depends only on the input,
 * so a retried CreateVolume lands on the same prefix (and the marker's owner name tells volumes apart).
 */
function fitVolumeId(bucket: string, basePrefix: string, rendered: string): string {
  const join = (part: string) => (basePrefix ? `${basePrefix}/${part}` : part);
  const full = join(rendered);
  if (Buffer.byteLength(formatVolumeId({ bucket, prefix: full })) <= MAX_VOLUME_ID_BYTES) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, SHORTENED_PREFIX_HASH_CHARS);
  // What stays for the rendered part: the limit less "bucket[/basePrefix]", the '/' after it, '-' and the hash.
  const budget = MAX_VOLUME_ID_BYTES - Buffer.byteLength(formatVolumeId({ bucket, prefix: basePrefix })) - 1 - 1 - hash.length;
  if (budget < 1) {
    throw invalid(
      `bucket ${bucket} with ${PARAMETERS.basePrefix} ${JSON.stringify(basePrefix)} leaves no room for a volume name within the ${MAX_VOLUME_ID_BYTES}-byte volume ID limit; shorten ${PARAMETERS.basePrefix}`,
    );
  }
  let kept = '';
  for (const character of rendered) {
    if (Buffer.byteLength(kept + character) > budget) break;
    kept += character;
  }
  return join(`${kept}-${hash}`);
}

/**
 * Renders the volume's location from the parameters and the CreateVolume name (csi-provisioner
 * makes it the PV name): bucket, then basePrefix/template. Throws
 * INVALID_ARGUMENT when the rendered prefix is empty or not a safe key prefix.
 */
export function volumeLocation(parameters: VolumeParameters, name: string): VolumeLocation {
  const lookup: Record<TemplateVariable, string | undefined> = {
    'pv.name': name,
    'pvc.namespace': parameters.pvc?.namespace,
    'pvc.name': parameters.pvc?.name,
  };
  const rendered = parameters.prefixTemplate
    .replace(/\$\{([^}]*)\}/g, (_whole, variable: string) => lookup[variable as TemplateVariable] ?? '')
    .replace(/\/$/, '');
  const problem = rendered === '' ? 'it is empty' : prefixProblem(rendered);
  if (problem) {
    throw invalid(`StorageClass parameter ${PARAMETERS.prefixTemplate} ${JSON.stringify(parameters.prefixTemplate)} renders to ${JSON.stringify(rendered)}, which is not a usable prefix: ${problem}`);
  }
  const prefix = fitVolumeId(parameters.bucket, parameters.basePrefix, rendered);
  const fittedProblem = prefixProblem(prefix);
  if (fittedProblem) throw invalid(`the prefix ${JSON.stringify(prefix)} shortened to fit the volume ID is not usable: ${fittedProblem}`);
  return { bucket: parameters.bucket, prefix: `${prefix}/` };
}

/** The volume_context handed to the node: where the volume is and how to mount it. */
export function volumeContext(location: VolumeLocation, parameters: Pick<VolumeParameters, 'cache' | 'mountOptions'>): Record<string, string> {
  return {
    [VOLUME_CONTEXT.bucket]: location.bucket,
    [VOLUME_CONTEXT.prefix]: location.prefix,
    [VOLUME_CONTEXT.cache]: String(parameters.cache),
    ...(parameters.mountOptions ? { [VOLUME_CONTEXT.mountOptions]: parameters.mountOptions } : {}),
  };
}
