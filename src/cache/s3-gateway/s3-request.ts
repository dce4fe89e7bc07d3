// What a request to the S3 gateway asks for, read the way S3 reads it: the bucket and key from a path-style or
// virtual-hosted-style address, the operation from the method and the sub-resource in the query, and the
// parameters of the few read operations the gateway serves, refused with S3's own codes when S3 would refuse them.
// Nothing here is trusted yet: the server verifies the signature and checks the grants before serving.
import { bucketNameProblem } from '../../objectstore/s3-url';
import { MAX_PARTS, type ByteRange } from '../../objectstore/store';
import { MAX_KEY_BYTES, MAX_LIST_KEYS } from '../../objectstore/validate';
import { S3Error, type S3ErrorCode } from './error-reply';
import { decodeQuery, decodeUriPart, type IncomingRequest } from './sigv4-verify';

/** The operations the gateway serves, named as in its refusals. */
export const SERVED_OPERATIONS = ['GetObject', 'HeadObject', 'ListObjectsV2', 'ListObjects', 'GetBucketLocation', 'HeadBucket'] as const;

/** A Range header of one range, as asked: `bytes=a-b` or `bytes=a-` (start, end inclusive), or `bytes=-n` (the last n bytes). */
export type RequestedRange = { start: number; end?: number } | { suffix: number };

/** The preconditions of a GetObject or HeadObject, from its If-* headers; a date that is not an HTTP-date is left out. */
export interface Conditions {
  /** As sent: one or more quoted ETags, or `*`. */
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: Date;
  ifUnmodifiedSince?: Date;
}

/** The response headers a GetObject or HeadObject asks to be set (the response-* query parameters). */
export interface ResponseOverrides {
  contentType?: string;
  contentDisposition?: string;
  cacheControl?: string;
  contentEncoding?: string;
  contentLanguage?: string;
  expires?: string;
}

/** A GetObject or HeadObject. */
export interface ObjectRequest {
  kind: 'GetObject' | 'HeadObject';
  bucket: string;
  key: string;
  /** Absent when the Range header is, and when S3 would ignore it (several ranges, malformed). */
  range?: RequestedRange;
  conditions: Conditions;
  /** One part of an object uploaded in parts, 1..10000. */
  partNumber?: number;
  responseOverrides: ResponseOverrides;
}

/** The parameters both list operations take. */
interface ListParameters {
  bucket: string;
  /** '' when none. */
  prefix: string;
  /** Absent when none or empty (S3 ignores an empty delimiter). */
  delimiter?: string;
  /** At most MAX_LIST_KEYS (larger asks are clamped); 0 asks for an empty page, which the origin's list() refuses. */
  maxKeys: number;
  /** `url`: keys and prefixes in the reply are URL-encoded. */
  encodingType?: 'url';
}

/** A ListObjectsV2 (`GET /bucket?list-type=2`). */
export interface ListObjectsV2Request extends ListParameters {
  kind: 'ListObjectsV2';
  continuationToken?: string;
  startAfter?: string;
  /** Whether the client asked for each object's Owner (the gateway knows none to give). */
  fetchOwner: boolean;
}

/** A ListObjects, version 1 (`GET /bucket`): what rclone's provider Other lists with. */
export interface ListObjectsRequest extends ListParameters {
  kind: 'ListObjects';
  /** List the keys after this one. */
  marker?: string;
}

/**
 * An operation the gateway does not serve, with the code to refuse it with: AccessDenied (403) for a write,
 * NotImplemented (501) for a read it lacks, MethodNotAllowed (405) for a method S3 has no operation for.
 */
export interface UnsupportedRequest {
  kind: 'Unsupported';
  /** S3's name of the operation (PutObject, GetObjectAcl, ...), or the method when it has none. */
  operation: string;
  /** Why it is refused, for the log and the message. */
  reason: string;
  code: Extract<S3ErrorCode, 'AccessDenied' | 'NotImplemented' | 'MethodNotAllowed'>;
  bucket?: string;
  key?: string;
}

/** What a request asks for. */
export type S3Request =
  | { kind: 'ListBuckets' }
  | { kind: 'HeadBucket'; bucket: string }
  | { kind: 'GetBucketLocation'; bucket: string }
  | ListObjectsV2Request
  | ListObjectsRequest
  | ObjectRequest
  | UnsupportedRequest;

/** How the gateway is addressed. */
export interface S3RequestOptions {
  /**
   * Host names under which a request is virtual-hosted style, `<bucket>.<suffix>` (e.g. `s3.granary.svc.cluster.local`);
   * any other host is path style. None by default.
   */
  virtualHostSuffixes?: readonly string[];
}

/** What `request` asks for; throws S3Error with S3's code when S3 would refuse it. */
export function parseS3Request(request: IncomingRequest, options: S3RequestOptions = {}): S3Request {
  const method = request.method.toUpperCase();
  const { bucket, key } = addressOf(request, options.virtualHostSuffixes ?? []);
  const query = queryParameters(request.query);
  if (bucket === undefined) {
    return method === 'GET' || method === 'HEAD' ? { kind: 'ListBuckets' } : unsupported(method, method, 'a request to the service names no bucket', {});
  }
  return key === undefined ? bucketRequest(method, bucket, query, request.headers) : objectRequest(method, bucket, key, query, request.headers);
}

/** The S3Error to answer an Unsupported request with: it names the operation and says that the gateway is read-only. */
export function unsupportedError(request: UnsupportedRequest): S3Error {
  const served = `it serves ${SERVED_OPERATIONS.join(', ')}`;
  switch (request.code) {
    case 'AccessDenied':
      return new S3Error(request.code, `${request.operation} is denied: this S3 gateway (granary's cache) is read-only and ${served}; write to the origin bucket instead`);
    case 'MethodNotAllowed':
      return new S3Error(request.code, `the method ${request.operation} is not allowed: this S3 gateway (granary's cache) is read-only and ${served}, with GET and HEAD`);
    case 'NotImplemented':
      return new S3Error(request.code, `${request.operation} is not implemented (${request.reason}): this S3 gateway (granary's cache) is read-only and ${served}`);
  }
}

/**
 * The bytes [start, end) of an object of `size` bytes that `range` selects, as S3 resolves it: the end clipped to the
 * object, a suffix longer than the object the whole of it. Undefined means the whole object with 200, not 206: no
 * range, or a suffix range of an empty object (S3 answers it 200 with the empty body). Throws InvalidRange (416)
 * when nothing can be selected: a start at or past the end (so any `bytes=a-` of an empty object), or `bytes=-0`;
 * with that 416 S3 sends the Content-Range of an unsatisfied range (RFC 9110 14.4: `bytes`, an asterisk, the size).
 */
export function resolveRange(range: RequestedRange | undefined, size: number): ByteRange | undefined {
  if (range === undefined) return undefined;
  if ('suffix' in range) {
    if (range.suffix === 0) throw invalidRange('bytes=-0 selects no byte', size);
    return size === 0 ? undefined : { start: Math.max(0, size - range.suffix), end: size };
  }
  if (range.start >= size) throw invalidRange(`bytes=${range.start}-${range.end ?? ''} starts at or past the end of the object`, size);
  return { start: range.start, end: range.end === undefined ? size : Math.min(range.end + 1, size) };
}

function invalidRange(problem: string, size: number): S3Error {
  return new S3Error('InvalidRange', `The requested range is not satisfiable: ${problem} (${size} bytes); ask for a range that starts within it`);
}

/** The query parameters that carry meaning, by name (case matters, as in S3). */
type Query = ReadonlyMap<string, string>;

/**
 * The bucket and key a request addresses. Virtual-hosted style when the Host (port stripped, any case) is
 * `<bucket>.<suffix>`: the whole path is the key. Otherwise path style: `/bucket` or `/bucket/key`. The key is the
 * path after the bucket, percent-decoded ('+' is a plus sign in a path); an empty key addresses the bucket.
 */
function addressOf(request: IncomingRequest, suffixes: readonly string[]): { bucket?: string; key?: string } {
  if (!request.path.startsWith('/')) throw new S3Error('InvalidURI', `the request path "${request.path.slice(0, 64)}" does not start with "/": send /BUCKET/KEY`);
  const hostBucket = bucketOfHost(request.headers.host ?? '', suffixes);
  const rest = request.path.slice(1);
  if (hostBucket !== undefined) return { bucket: checkBucket(hostBucket), key: keyOf(rest) };
  if (rest === '') return {};
  const slash = rest.indexOf('/');
  const bucket = checkBucket(decodeUriPart(slash < 0 ? rest : rest.slice(0, slash)));
  return { bucket, key: slash < 0 ? undefined : keyOf(rest.slice(slash + 1)) };
}

/** The bucket a virtual-hosted-style Host names under one of `suffixes`, or undefined for a path-style request. */
function bucketOfHost(host: string, suffixes: readonly string[]): string | undefined {
  // An IPv6 literal ([::1]:9000) names no bucket.
  if (host.startsWith('[')) return undefined;
  const name = host.replace(/:\d*$/, '').replace(/\.$/, '').toLowerCase();
  for (const suffix of suffixes) {
    const dotted = `.${suffix.toLowerCase().replace(/^\.|\.$/g, '')}`;
    if (name.endsWith(dotted) && name.length > dotted.length) return name.slice(0, -dotted.length);
  }
  return undefined;
}

function checkBucket(bucket: string): string {
  const problem = bucketNameProblem(bucket);
  if (problem) throw new S3Error('InvalidBucketName', `The specified bucket is not valid: "${bucket.slice(0, 80)}": ${problem}`);
  return bucket;
}

/** The key of an encoded path remainder, undefined when empty; longer than S3 allows is KeyTooLongError. */
function keyOf(encoded: string): string | undefined {
  if (encoded === '') return undefined;
  const key = decodeUriPart(encoded);
  const bytes = Buffer.byteLength(key);
  if (bytes > MAX_KEY_BYTES) throw new S3Error('KeyTooLongError', `Your key is too long: ${bytes} bytes of UTF-8, S3 allows ${MAX_KEY_BYTES}`);
  return key;
}

/**
 * The query parameters, decoded, without the noise clients add: the signature's X-Amz-* (presigned URLs), any
 * x-amz-* and the x-id=GetObject the SDKs append. A parameter given twice is InvalidArgument: which one counts
 * would be a guess.
 */
function queryParameters(query: string): Query {
  const parameters = new Map<string, string>();
  for (const [name, value] of decodeQuery(query)) {
    if (/^x-amz-/i.test(name) || name === 'x-id') continue;
    if (parameters.has(name)) throw new S3Error('InvalidArgument', `the query parameter "${name}" appears more than once: give it once`);
    parameters.set(name, value);
  }
  return parameters;
}

/**
 * The sub-resources S3 addresses with a query parameter, each with the operation it names for a method on a bucket
 * or on an object (`*` for any method, with the verb Get, Put, Delete or Post put before the noun; HEAD reads as
 * Get). None is served (GetBucketLocation is read before), so each is a refusal that names the operation; a
 * parameter without an operation for the method is not a sub-resource there and is ignored, as are unknown ones.
 */
const SUB_RESOURCES: Record<string, { bucket?: Record<string, string>; object?: Record<string, string> }> = {
  acl: { bucket: { '*': 'BucketAcl' }, object: { '*': 'ObjectAcl' } },
  accelerate: { bucket: { '*': 'BucketAccelerateConfiguration' } },
  analytics: { bucket: { '*': 'BucketAnalyticsConfiguration' } },
  attributes: { object: { GET: 'GetObjectAttributes' } },
  cors: { bucket: { '*': 'BucketCors' } },
  delete: { bucket: { POST: 'DeleteObjects' } },
  encryption: { bucket: { '*': 'BucketEncryption' } },
  'intelligent-tiering': { bucket: { '*': 'BucketIntelligentTieringConfiguration' } },
  inventory: { bucket: { '*': 'BucketInventoryConfiguration' } },
  'legal-hold': { object: { '*': 'ObjectLegalHold' } },
  lifecycle: { bucket: { '*': 'BucketLifecycleConfiguration' } },
  logging: { bucket: { '*': 'BucketLogging' } },
  metrics: { bucket: { '*': 'BucketMetricsConfiguration' } },
  notification: { bucket: { '*': 'BucketNotificationConfiguration' } },
  'object-lock': { bucket: { '*': 'ObjectLockConfiguration' } },
  ownershipControls: { bucket: { '*': 'BucketOwnershipControls' } },
  policy: { bucket: { '*': 'BucketPolicy' } },
  policyStatus: { bucket: { '*': 'BucketPolicyStatus' } },
  publicAccessBlock: { bucket: { '*': 'PublicAccessBlock' } },
  replication: { bucket: { '*': 'BucketReplication' } },
  requestPayment: { bucket: { '*': 'BucketRequestPayment' } },
  restore: { object: { POST: 'RestoreObject' } },
  retention: { object: { '*': 'ObjectRetention' } },
  select: { object: { POST: 'SelectObjectContent' } },
  session: { bucket: { GET: 'CreateSession' } },
  tagging: { bucket: { '*': 'BucketTagging' }, object: { '*': 'ObjectTagging' } },
  torrent: { object: { GET: 'GetObjectTorrent' } },
  uploadId: { object: { GET: 'ListParts', PUT: 'UploadPart', POST: 'CompleteMultipartUpload', DELETE: 'AbortMultipartUpload' } },
  uploads: { bucket: { GET: 'ListMultipartUploads' }, object: { POST: 'CreateMultipartUpload' } },
  versioning: { bucket: { '*': 'BucketVersioning' } },
  versions: { bucket: { GET: 'ListObjectVersions' } },
  website: { bucket: { '*': 'BucketWebsite' } },
};

const VERBS: Record<string, string> = { GET: 'Get', HEAD: 'Get', PUT: 'Put', DELETE: 'Delete', POST: 'Post' };
/** The operations S3 has for each writing method, on a bucket and on an object. */
const WRITES: Record<string, { bucket: string; object: string }> = {
  PUT: { bucket: 'CreateBucket', object: 'PutObject' },
  POST: { bucket: 'PostObject', object: 'PostObject' },
  DELETE: { bucket: 'DeleteBucket', object: 'DeleteObject' },
};

/**
 * The refusal of `method` on the target, or undefined when it is a GET or HEAD without a sub-resource. A write
 * (PUT, POST, DELETE) is AccessDenied, as S3 answers a key whose policy allows only reads: clients report it as a
 * permission error and do not retry it. A read the gateway lacks (an ACL, tags, versions) is NotImplemented, S3's
 * code for a feature a server does not have, which clients do not retry either. Any other method is MethodNotAllowed.
 */
function refusal(method: string, target: 'bucket' | 'object', query: Query, headers: IncomingRequest['headers'], place: { bucket: string; key?: string }): UnsupportedRequest | undefined {
  const verb = VERBS[method];
  if (verb === undefined) return unsupported(method, method, 'S3 has no operation for this method', place);
  for (const name of query.keys()) {
    const names = SUB_RESOURCES[name]?.[target];
    const noun = names?.['*'];
    const operation = names?.[method] ?? (noun === undefined ? undefined : `${verb}${noun}`);
    if (operation === undefined) continue;
    const copied = operation === 'UploadPart' && headers['x-amz-copy-source'] !== undefined ? 'UploadPartCopy' : operation;
    return unsupported(method, copied, `the sub-resource ?${name} is not served`, place, operation === 'SelectObjectContent');
  }
  const write = WRITES[method]?.[target];
  if (write !== undefined) {
    const copied = write === 'PutObject' && headers['x-amz-copy-source'] !== undefined ? 'CopyObject' : write;
    return unsupported(method, copied, 'the gateway only reads', place);
  }
  if (target === 'object' && query.has('versionId')) return unsupported(method, method === 'HEAD' ? 'HeadObject' : 'GetObject', 'reading a version (versionId) is not served', place);
  return undefined;
}

/** An UnsupportedRequest for `method`: a read is NotImplemented, as is a POST that only reads (`reads`). */
function unsupported(method: string, operation: string, reason: string, place: { bucket?: string; key?: string }, reads = false): UnsupportedRequest {
  const code = VERBS[method] === undefined ? 'MethodNotAllowed' : method === 'GET' || method === 'HEAD' || reads ? 'NotImplemented' : 'AccessDenied';
  return { kind: 'Unsupported', operation, reason, code, ...place };
}

function bucketRequest(method: string, bucket: string, query: Query, headers: IncomingRequest['headers']): S3Request {
  const refused = refusal(method, 'bucket', query, headers, { bucket });
  if (refused !== undefined) return refused;
  if (method === 'HEAD') return { kind: 'HeadBucket', bucket };
  if (query.has('location')) return { kind: 'GetBucketLocation', bucket };
  const listType = query.get('list-type');
  if (listType !== undefined && listType !== '2') throw new S3Error('InvalidArgument', `Invalid list type: list-type=${listType}; use list-type=2 (ListObjectsV2), or leave it out (ListObjects)`);
  const parameters = {
    bucket,
    prefix: query.get('prefix') ?? '',
    ...optional('delimiter', query.get('delimiter')),
    maxKeys: maxKeysOf(query.get('max-keys')),
    ...optional('encodingType', encodingTypeOf(query.get('encoding-type'))),
  };
  if (listType === undefined) return { kind: 'ListObjects', ...parameters, ...optional('marker', query.get('marker')) };
  return {
    kind: 'ListObjectsV2',
    ...parameters,
    ...optional('continuationToken', query.get('continuation-token')),
    ...optional('startAfter', query.get('start-after')),
    fetchOwner: query.get('fetch-owner') === 'true',
  };
}

/** `{ [name]: value }`, or nothing when the value is absent or empty: S3 reads an empty parameter as none. */
function optional<Name extends string, Value extends string>(name: Name, value: Value | undefined): { [key in Name]?: Value } {
  return value === undefined || value === '' ? {} : ({ [name]: value } as { [key in Name]: Value });
}

/** max-keys: a whole number, clamped to MAX_LIST_KEYS; MAX_LIST_KEYS when absent. */
function maxKeysOf(text: string | undefined): number {
  if (text === undefined) return MAX_LIST_KEYS;
  if (!/^\d+$/.test(text)) throw new S3Error('InvalidArgument', `Provided max-keys not an integer or within integer range: "${text.slice(0, 32)}"; give 0 to ${MAX_LIST_KEYS}`);
  return Math.min(Number(text), MAX_LIST_KEYS);
}

function encodingTypeOf(text: string | undefined): 'url' | undefined {
  if (text === undefined || text === 'url') return text;
  throw new S3Error('InvalidArgument', `Invalid Encoding Method specified in Request: encoding-type=${text.slice(0, 32)}; the only one is url`);
}

/** The response-* query parameters and the ResponseOverrides field each sets. */
const OVERRIDES: ReadonlyArray<[parameter: string, field: keyof ResponseOverrides]> = [
  ['response-content-type', 'contentType'],
  ['response-content-disposition', 'contentDisposition'],
  ['response-cache-control', 'cacheControl'],
  ['response-content-encoding', 'contentEncoding'],
  ['response-content-language', 'contentLanguage'],
  ['response-expires', 'expires'],
];

function objectRequest(method: string, bucket: string, key: string, query: Query, headers: IncomingRequest['headers']): S3Request {
  const refused = refusal(method, 'object', query, headers, { bucket, key });
  if (refused !== undefined) return refused;
  const range = rangeOf(headers.range);
  const partNumber = partNumberOf(query.get('partNumber'));
  if (range !== undefined && partNumber !== undefined) {
    throw new S3Error('InvalidRequest', 'Cannot specify both Range header and partNumber query parameter: ask for a part or for a range');
  }
  const responseOverrides: ResponseOverrides = {};
  for (const [parameter, field] of OVERRIDES) {
    const value = query.get(parameter);
    if (value !== undefined) responseOverrides[field] = value;
  }
  return {
    kind: method === 'HEAD' ? 'HeadObject' : 'GetObject',
    bucket,
    key,
    ...(range !== undefined && { range }),
    conditions: {
      ...optional('ifMatch', headers['if-match']),
      ...optional('ifNoneMatch', headers['if-none-match']),
      ...optionalDate('ifModifiedSince', headers['if-modified-since']),
      ...optionalDate('ifUnmodifiedSince', headers['if-unmodified-since']),
    },
    ...(partNumber !== undefined && { partNumber }),
    responseOverrides,
  };
}

/** `{ [name]: the date }` of an HTTP-date header; nothing when absent or not a date, which HTTP says to ignore (RFC 9110 13.1.3). */
function optionalDate<Name extends string>(name: Name, text: string | undefined): { [key in Name]?: Date } {
  const time = text === undefined ? NaN : Date.parse(text);
  return Number.isNaN(time) ? {} : ({ [name]: new Date(time) } as { [key in Name]: Date });
}

function partNumberOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const number = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(number >= 1 && number <= MAX_PARTS)) throw new S3Error('InvalidArgument', `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive: partNumber=${text.slice(0, 32)}`);
  return number;
}

/**
 * The one range a Range header asks for, or undefined when S3 serves the whole object instead: no header, a header
 * of several ranges (`bytes=0-1,5-6`: S3 does not serve multipart/byteranges and answers 200 with the whole object),
 * or one S3 ignores as invalid (RFC 9110 14.2: a server ignores a Range it cannot parse), S3 answering 200 with the
 * whole object: another unit, no '=', a number that is not digits, `bytes=-`, or a last byte before the first
 * (`bytes=5-2`). Whether it can be satisfied depends on the size: resolveRange.
 */
function rangeOf(header: string | undefined): RequestedRange | undefined {
  const match = header === undefined ? null : /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) return undefined;
  const [first = '', last = ''] = match.slice(1);
  if (first === '') return last === '' ? undefined : { suffix: Number(last) };
  const start = Number(first);
  if (last === '') return { start };
  const end = Number(last);
  return end < start ? undefined : { start, end };
}
