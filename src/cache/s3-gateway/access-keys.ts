// The S3 gateway's access keys and what each may read, from a keys file (a mounted Kubernetes Secret):
//   {"keys": [{"accessKeyId": "...", "secretAccessKey": "...", "grants": ["bucket", "bucket/prefix/"]}]}
// A grant is a whole bucket or one folder of it; a key reads objects, and lists, only within its grants.
// Secrets are reachable only through secretOf: no error, log line or inspected object shows them.
import { promises as fs } from 'node:fs';
import { z } from 'zod';
import { parseConfig } from '../../config/parse';
import { bucketNameProblem } from '../../objectstore/s3-url';
import type { SecretLookup } from './sigv4-verify';

/** The shortest secret accepted: 20 characters (AWS's are 40; generate one with `head -c 30 /dev/urandom | base64`). */
export const MIN_SECRET_LENGTH = 20;

/** A bucket, or one folder of it, that a key may read and list. */
export interface Grant {
  bucket: string;
  /** '' for the whole bucket, else a folder: ends with '/'. */
  prefix: string;
}

/** One access key as the keys file gives it. */
export interface AccessKey {
  accessKeyId: string;
  secretAccessKey: string;
  grants: readonly Grant[];
}

/** `BUCKET` or `BUCKET/PREFIX` as a Grant (the prefix made a folder: `team` grants `team/...`), or why it is not one. */
export function parseGrant(text: string): Grant | string {
  if (/^s3:\/\//i.test(text)) return `"${text}": write the grant without s3://, as BUCKET or BUCKET/PREFIX/`;
  const slash = text.indexOf('/');
  const bucket = slash < 0 ? text : text.slice(0, slash);
  const prefix = slash < 0 ? '' : text.slice(slash + 1);
  const problem = bucketNameProblem(bucket);
  if (problem) return `"${bucket}" in the grant "${text}" is not a bucket name: ${problem}`;
  if (prefix.startsWith('/') || prefix.includes('//')) return `the grant "${text}" has an empty path segment ("//"): write BUCKET/PREFIX/`;
  return { bucket, prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/` };
}

const grantSchema = z.string().transform((text, context) => {
  const grant = parseGrant(text);
  if (typeof grant !== 'string') return grant;
  context.addIssue({ code: 'custom', message: grant });
  return z.NEVER;
});

const accessKeySchema = z.strictObject({
  accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/, 'an access key id is 16 to 128 characters, upper-case letters and digits only'),
  // Custom messages only: zod's own would be fine today, but a secret must never reach one.
  secretAccessKey: z
    .string({ error: 'a secretAccessKey (a string) is required' })
    .min(MIN_SECRET_LENGTH, `a secret is at least ${MIN_SECRET_LENGTH} characters long (for example: head -c 30 /dev/urandom | base64)`)
    .regex(/^\S+$/, 'a secret holds no whitespace: check for a stray space or newline'),
  grants: z.array(grantSchema).min(1, 'give at least one grant, BUCKET or BUCKET/PREFIX/: a key without one can read nothing'),
});

/** The keys file: every access key the gateway accepts, each id once. */
export const accessKeysFileSchema = z.strictObject({
  keys: z.array(accessKeySchema).superRefine(
    (keys, context) => {
      const first = new Map<string, number>();
      keys.forEach((key: { accessKeyId?: unknown } | null, index) => {
        const id = key?.accessKeyId;
        if (typeof id !== 'string') return;
        const earlier = first.get(id);
        if (earlier === undefined) first.set(id, index);
        else context.addIssue({ code: 'custom', path: [index, 'accessKeyId'], message: `"${id}" is also the id of keys.${earlier}: each key needs its own` });
      });
    },
    // Also when other fields of the keys are wrong, so that one error lists every problem.
    { when: (payload) => Array.isArray(payload.value) },
  ),
});

/** The access keys the gateway accepts, by id. */
export class AccessKeys {
  // A #private field: JSON.stringify and util.inspect (so any logger) leave it out.
  readonly #byId = new Map<string, AccessKey>();

  constructor(keys: readonly AccessKey[]) {
    for (const key of keys) this.#byId.set(key.accessKeyId, key);
  }

  /** How many keys there are. */
  get size(): number {
    return this.#byId.size;
  }

  /** The secret of an access key id, for SigV4Verifier; undefined for an unknown id. */
  readonly secretOf: SecretLookup = (accessKeyId) => this.#byId.get(accessKeyId)?.secretAccessKey;

  /** What the key may read; none for an unknown id. */
  grantsOf(accessKeyId: string): readonly Grant[] {
    return this.#byId.get(accessKeyId)?.grants ?? [];
  }
}

/** Whether `grants` let a key read the object `key` of `bucket`: it lies within a granted bucket or folder. */
export function mayRead(grants: readonly Grant[], bucket: string, key: string): boolean {
  return grants.some((grant) => grant.bucket === bucket && key.startsWith(grant.prefix));
}

/**
 * Whether `grants` let a key list `bucket` under `prefix`: only when the prefix lies within a granted folder (or
 * the whole bucket is granted), so that no key or folder name outside the grants shows. Listing `team` with the
 * grant `team/` is refused: it would show `teammates/` too.
 */
export function mayList(grants: readonly Grant[], bucket: string, prefix: string): boolean {
  return mayRead(grants, bucket, prefix);
}

/** Whether `grants` name `bucket` at all: enough to be told where it is (GetBucketLocation). */
export function mayLocate(grants: readonly Grant[], bucket: string): boolean {
  return grants.some((grant) => grant.bucket === bucket);
}

/**
 * The access keys in `text`, the content of `file` (named in errors). Throws one Error listing every problem with
 * its place (keys.N.field), never a secret.
 */
export function parseAccessKeys(text: string, file: string): AccessKeys {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // JSON.parse's message may quote the text around the error, a secret perhaps: only the place is told.
    // eslint-disable-next-line preserve-caught-error -- the cause would carry that message along
    throw new Error(`the S3 gateway access keys file ${file} is not valid JSON${placeOfJsonError(text, error)}: check it with jq . ${file}`);
  }
  const validate = parseConfig(accessKeysFileSchema, `S3 gateway access keys (${file})`);
  return new AccessKeys(validate(json as z.input<typeof accessKeysFileSchema>).keys);
}

/** ` (line L, column C)` where JSON.parse's `error` in `text` is, or '' when its message does not tell. */
function placeOfJsonError(text: string, error: unknown): string {
  const position = /at position (\d+)/.exec(String((error as Error).message))?.[1];
  if (position === undefined) return '';
  const lines = text.slice(0, Number(position)).split('\n');
  return ` (line ${lines.length}, column ${(lines[lines.length - 1] ?? '').length + 1})`;
}

/** Reads and parses the keys file at `file`; throws an Error naming the file, never a secret. */
export async function readAccessKeysFile(file: string): Promise<AccessKeys> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`cannot read the S3 gateway access keys file ${file} (${code}): mount the access keys Secret there`, { cause: error });
  }
  return parseAccessKeys(text, file);
}
