// Real S3 clients other than the JavaScript SDK, run against any endpoint (versitygw, the gateway): boto3 (pinned,
// e2e/tools/install.sh, through s3_client.py) and rclone's S3 backend (Debian's). Each call runs the client once in
// its own process, with the credentials in its environment only (never argv), and says what the client did; it throws
// with the client's stderr when the client fails or outlives its timeout.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import versions from '../tools/versions.json';
import type { S3Server } from './s3-server';
import { pythonToolPath } from './tools';

/** How long one client run may take before it is killed (a 20 MiB download over loopback takes about a second). */
export const CLIENT_TIMEOUT_MS = 120_000;

/** How much of a failed client's stderr an error quotes (its end: a Python traceback ends with the error). */
const STDERR_QUOTED_CHARS = 4000;

/** The most a client may print on stdout (a listing's JSON). */
const MAX_STDOUT_BYTES = 64 * 1024 * 1024;

/** The Python script that runs boto3's side of every boto3 call. */
const BOTO3_SCRIPT = path.join(__dirname, 's3_client.py');

/** The remote's name in rclone's RCLONE_CONFIG_<NAME>_* variables. */
const RCLONE_REMOTE = 'target';

/** An S3 endpoint and who a client is there. */
export interface S3Target {
  /** http://HOST:PORT or https://HOST:PORT; clients address buckets path-style. */
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** A PEM file with the certificate an https endpoint's chains to; default each client's own trust (botocore's bundled CAs, the system's for rclone). */
  caFile?: string;
  /** Kill the client after this long (ms); default CLIENT_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** The target for a test S3 server (a started versitygw, or the shared one of testS3()). */
export function s3Target(server: Pick<S3Server, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'> & { tls?: { certFile: string } }): S3Target {
  return {
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    ...(server.tls && { caFile: server.tls.certFile }),
  };
}

/** One HTTP request boto3 sent (botocore's before-send event), with the headers that say what kind of read it was. */
export interface Boto3Request {
  /** The S3 operation: HeadObject, GetObject, ListObjectsV2, ... */
  operation: string;
  method: string;
  /** The full URL, query included. */
  url: string;
  /** The Range header (`bytes=FIRST-LAST`), when sent. */
  range?: string;
  /** The If-Match header: s3transfer sends the ETag of its HeadObject with every ranged GET of a download. */
  ifMatch?: string;
  /** The x-amz-checksum-mode header: botocore asks for the object's checksum on GETs (ENABLED). */
  checksumMode?: string;
}

/** What every boto3 call returns besides its own result. */
export interface Boto3Run {
  /** The packages the run imported: the pinned ones (checked). */
  versions: { boto3: string; botocore: string; s3transfer: string };
  /** Every request boto3 sent, in the order it sent them (parallel GETs interleave). */
  requests: Boto3Request[];
}

/** A boto3 download_file. */
export interface Boto3Download extends Boto3Run {
  /** Hex sha256 of the downloaded file. */
  sha256: string;
  bytes: number;
}

/** A listing through boto3's list_objects_v2 paginator. */
export interface Boto3Listing extends Boto3Run {
  /** Every key, in the order the pages gave them. */
  keys: string[];
  /** Every common prefix (with a delimiter), in page order. */
  commonPrefixes: string[];
  /** How many pages (ListObjectsV2 requests) the paginator made. */
  pages: number;
}

/** A boto3 head_object. */
export interface Boto3Head extends Boto3Run {
  contentLength: number;
  eTag: string | null;
  /** ISO 8601, with the offset. */
  lastModified: string;
  contentType: string | null;
  /** The user metadata (x-amz-meta-*), names lower-cased. */
  metadata: Record<string, string>;
}

/**
 * boto3's `download_file` of `bucket/key` into `file`, with a TransferConfig that makes an object larger than
 * `multipartChunkBytes` download as ranged GETs of that size, `concurrency` (default 4) at a time: a HeadObject,
 * then one GetObject per chunk. Returns the file's sha256 and the requests sent.
 */
export function boto3DownloadFile(options: S3Target & { bucket: string; key: string; file: string; multipartChunkBytes: number; concurrency?: number }): Promise<Boto3Download> {
  const { bucket, key, file, multipartChunkBytes, concurrency = 4 } = options;
  return runBoto3<Boto3Download>(options, { operation: 'download', bucket, key, file, chunkBytes: multipartChunkBytes, concurrency });
}

/**
 * Every key under `prefix` (default all) through boto3's `list_objects_v2` paginator, `pageSize` keys a page
 * (PaginationConfig PageSize, sent as max-keys), with `delimiter` when given. Returns the keys and the number of pages.
 */
export function boto3ListAll(options: S3Target & { bucket: string; prefix?: string; pageSize: number; delimiter?: string }): Promise<Boto3Listing> {
  const { bucket, prefix = '', pageSize, delimiter = null } = options;
  return runBoto3<Boto3Listing>(options, { operation: 'list', bucket, prefix, pageSize, delimiter });
}

/** boto3's `head_object` of `bucket/key`: its size, ETag, Last-Modified, type and user metadata. */
export function boto3Head(options: S3Target & { bucket: string; key: string }): Promise<Boto3Head> {
  const { bucket, key } = options;
  return runBoto3<Boto3Head>(options, { operation: 'head', bucket, key });
}

/** What rclone copied. */
export interface RcloneCopy {
  /** Every file under the destination directory, by path. */
  files: CopiedFile[];
}

/** A file rclone copied. */
export interface CopiedFile {
  /** The path under the destination directory, '/'-separated: the key without the copied prefix. */
  path: string;
  bytes: number;
  /** Hex sha256 of the file's content. */
  sha256: string;
}

/**
 * `rclone copy REMOTE:SOURCE DESTINATION_DIR`, where `source` is `bucket` or `bucket/prefix` and the remote is an S3
 * backend (provider Other) defined by environment variables only, no config file. One attempt (--retries 1,
 * --low-level-retries 1), so a failing request fails the copy. Returns every file under `destinationDir`, by path.
 */
export async function rcloneCopy(options: S3Target & { source: string; destinationDir: string }): Promise<RcloneCopy> {
  const variable = (name: string) => `RCLONE_CONFIG_${RCLONE_REMOTE.toUpperCase()}_${name}`;
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    [variable('TYPE')]: 's3',
    [variable('PROVIDER')]: 'Other',
    [variable('ENDPOINT')]: options.endpoint,
    [variable('REGION')]: options.region,
    [variable('ACCESS_KEY_ID')]: options.credentials.accessKeyId,
    [variable('SECRET_ACCESS_KEY')]: options.credentials.secretAccessKey,
  };
  // --config '' keeps the whole configuration in memory: no file is read or written.
  const args = ['copy', `${RCLONE_REMOTE}:${options.source}`, options.destinationDir, '--config', '', '--retries', '1', '--low-level-retries', '1'];
  if (options.caFile) args.push('--ca-cert', options.caFile);
  await runClient('rclone', args, env, '', options.timeoutMs, `rclone copy of ${options.source}`);
  return { files: await filesUnder(options.destinationDir) };
}

/** Runs s3_client.py with one job on the pinned boto3, and checks that it was the pinned boto3 that ran. */
async function runBoto3<Result extends Boto3Run>(target: S3Target, job: Record<string, unknown>): Promise<Result> {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PYTHONPATH: pythonToolPath('boto3'),
    // Only the pinned folder and the interpreter's own packages: never the user's site-packages.
    PYTHONNOUSERSITE: '1',
    PYTHONIOENCODING: 'utf-8',
    AWS_ACCESS_KEY_ID: target.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: target.credentials.secretAccessKey,
    // No profile, region or endpoint from the machine's ~/.aws: the job says everything.
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
  const input = JSON.stringify({ ...job, endpoint: target.endpoint, region: target.region, caFile: target.caFile ?? null });
  const stdout = await runClient('python3', [BOTO3_SCRIPT], env, input, target.timeoutMs, `boto3 ${String(job.operation)}`);
  const result = JSON.parse(stdout) as Result;
  if (result.versions.boto3 !== versions.boto3.version) {
    throw new Error(`python3 imported boto3 ${result.versions.boto3}, not the pinned ${versions.boto3.version} of ${pythonToolPath('boto3')}`);
  }
  return result;
}

/** Runs a client to completion with `input` on its stdin; resolves with its stdout, rejects with its stderr. */
function runClient(command: string, args: string[], env: NodeJS.ProcessEnv, input: string, timeoutMs = CLIENT_TIMEOUT_MS, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_STDOUT_BYTES, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (!error) {
        resolve(stdout);
        return;
      }
      const how = error.killed ? `was killed after its timeout of ${timeoutMs} ms` : `failed (${error.code ?? error.signal})`;
      reject(new Error(`${what} ${how}: ${stderr.trim().slice(-STDERR_QUOTED_CHARS) || error.message}`));
    });
    // A client that dies before reading its job is reported through its exit.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

/** Every file under `dir` with its size and sha256, sorted by path. */
async function filesUnder(dir: string): Promise<CopiedFile[]> {
  const names = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => fs.statSync(path.join(dir, name)).isFile());
  const files: CopiedFile[] = [];
  for (const name of names.sort()) {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of fs.createReadStream(path.join(dir, name)) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    files.push({ path: name.split(path.sep).join('/'), bytes, sha256: hash.digest('hex') });
  }
  return files;
}
