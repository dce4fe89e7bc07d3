// Verifying the SigV4 signature of a request to the S3 gateway, in the two forms S3 clients send: the
// Authorization header, and a presigned URL (the X-Amz-* query parameters). The canonical request, the string to
// sign and the signing key are src/objectstore/sigv4.ts's, the ones granary signs its own S3 requests with.
//
// The checks follow S3's, with S3's error codes, so that clients show their users what S3 would: the scope's
// service and terminator, its date against the request's, the clock (15 minutes either way), the presigned
// lifetime, `host` among the signed headers, then the signature itself. The region in the scope is not checked:
// clients sign with the region they were configured with, whatever GetBucketLocation answers.
import { timingSafeEqual } from 'node:crypto';
import { amzDate, canonicalRequest, credentialScope, deriveSigningKey, SIGV4_ALGORITHM, signatureBytes, stringToSign, uriEncode } from '../../objectstore/sigv4';
import { ByteLru } from '../../util/byte-lru';
import { S3Error, type S3ErrorCode } from './error-reply';

/** How far a request's time may be from the server's, either way: S3's 15 minutes. */
export const MAX_CLOCK_SKEW_MS = 15 * 60_000;
/** The longest lifetime a presigned URL may ask for (X-Amz-Expires): S3's 7 days, in seconds. */
export const MAX_PRESIGNED_EXPIRES_SECONDS = 604_800;
/** Signing keys kept (one per secret, day and region); a key is 32 bytes. */
export const SIGNING_KEYS_KEPT = 256;

/** The SHA-256 of an empty body: what a client that hashes its (empty) GET body signs. */
const EMPTY_BODY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const SERVICE = 's3';
const TERMINATOR = 'aws4_request';
/** The query parameters of a presigned URL, all required. */
const PRESIGNED_PARAMETERS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'] as const;

/** Where each form carries the signature's fields, and the code its malformed fields are refused with. */
const FORMS = {
  header: { malformed: 'AuthorizationHeaderMalformed', credential: 'Credential', signedHeaders: 'SignedHeaders', signature: 'Signature' },
  presigned: { malformed: 'AuthorizationQueryParametersError', credential: 'X-Amz-Credential', signedHeaders: 'X-Amz-SignedHeaders', signature: 'X-Amz-Signature' },
} as const satisfies Record<string, { malformed: S3ErrorCode; credential: string; signedHeaders: string; signature: string }>;

/** A request as it arrived, before anything in it is trusted. */
export interface IncomingRequest {
  method: string;
  /** The request target's path as received (still percent-encoded), without the query. */
  path: string;
  /** The raw query string after '?', '' when none. */
  query: string;
  /** Header values by lower-case name, as Node's IncomingMessage.headers holds them (an array value joined with ','). */
  headers: Readonly<Record<string, string | undefined>>;
}

/** Who signed a request that verified, and how. */
export interface VerifiedRequest {
  accessKeyId: string;
  /** The region the client signed for (not checked; for logs). */
  region: string;
  form: 'header' | 'presigned';
}

/** The secret of an access key id, or undefined for a key the gateway does not know. */
export type SecretLookup = (accessKeyId: string) => string | undefined;

/** What a request claims about its signature, read from the header or the query. */
interface Claim {
  form: keyof typeof FORMS;
  accessKeyId: string;
  day: string;
  region: string;
  /** The request time, basic ISO 8601, as signed. */
  time: string;
  signedHeaders: string[];
  signature: Buffer;
  payloadHash: string;
}

/**
 * The query's name-value pairs, percent-decoded, in order ('+' is a plus sign, as SigV4 reads it; a name without
 * '=' has the value ''). Throws S3Error InvalidURI on a malformed escape.
 */
export function decodeQuery(query: string): Array<[name: string, value: string]> {
  const pairs: Array<[string, string]> = [];
  for (const part of query.split('&')) {
    if (part === '') continue;
    const equals = part.indexOf('=');
    pairs.push(equals < 0 ? [decodeUriPart(part), ''] : [decodeUriPart(part.slice(0, equals)), decodeUriPart(part.slice(equals + 1))]);
  }
  return pairs;
}

/** `text` percent-decoded as UTF-8 ('+' stays a plus sign); throws S3Error InvalidURI on a malformed escape. */
export function decodeUriPart(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch (error) {
    throw new S3Error('InvalidURI', `the request URI has a malformed percent-escape in "${text}": encode each byte of UTF-8 as %XX`, { cause: error });
  }
}

/** S3's canonical path: each segment decoded then encoded once (no double encoding for S3), '/' kept. */
function canonicalPath(path: string): string {
  return path.split('/').map((segment) => uriEncode(decodeUriPart(segment))).join('/');
}

const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The canonical query: each name and value encoded, sorted by encoded name then value, a presigned URL's signature left out. */
function canonicalQuery(pairs: ReadonlyArray<[string, string]>, form: Claim['form']): string {
  return pairs
    .filter(([name]) => !(form === 'presigned' && name === FORMS.presigned.signature))
    .map(([name, value]): [string, string] => [uriEncode(name), uriEncode(value)])
    .sort(([nameA, valueA], [nameB, valueB]) => order(nameA, nameB) || order(valueA, valueB))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

/** Verifies SigV4 signatures against the secrets of `secretOf`, keeping the signing keys it derives. */
export class SigV4Verifier {
  private readonly signingKeys = new ByteLru<Buffer>(SIGNING_KEYS_KEPT * 32);

  constructor(private readonly secretOf: SecretLookup) {}

  /** Who signed `request`, received at `now`; throws S3Error saying what to fix when it cannot be trusted. */
  verify(request: IncomingRequest, now: Date): VerifiedRequest {
    const pairs = decodeQuery(request.query);
    const claim = readClaim(request, pairs, now);
    const secret = this.secretOf(claim.accessKeyId);
    if (secret === undefined) {
      throw new S3Error('InvalidAccessKeyId', `the access key id "${claim.accessKeyId}" is not one this gateway knows: use an access key granary issued (the gateway's keys file lists them)`);
    }
    for (const name of claim.signedHeaders) {
      if (request.headers[name] === undefined) {
        throw new S3Error('SignatureDoesNotMatch', `the signed header "${name}" is not in the request: a proxy between the client and the gateway may have removed it`);
      }
    }
    const scope = credentialScope(claim.day, claim.region, SERVICE);
    const canonical = canonicalRequest({
      method: request.method,
      path: canonicalPath(request.path),
      query: canonicalQuery(pairs, claim.form),
      headers: request.headers,
      signedHeaders: claim.signedHeaders,
      payloadHash: claim.payloadHash,
    });
    const expected = signatureBytes(this.signingKey(secret, claim.day, claim.region), stringToSign(claim.time, scope, canonical));
    if (!timingSafeEqual(expected, claim.signature)) {
      throw new S3Error(
        'SignatureDoesNotMatch',
        `the request signature does not match the one computed with the secret of "${claim.accessKeyId}": check the secret access key the client uses, and that nothing between it and the gateway rewrites the path, the query or a signed header`,
      );
    }
    return { accessKeyId: claim.accessKeyId, region: claim.region, form: claim.form };
  }

  /** The signing key of `secret` for the day and region, derived once while kept. */
  private signingKey(secret: string, day: string, region: string): Buffer {
    // Unambiguous whatever the region (the client's) and the secret hold.
    const id = JSON.stringify([day, region, secret]);
    let key = this.signingKeys.get(id);
    if (key === undefined) {
      key = deriveSigningKey(secret, day, region, SERVICE);
      this.signingKeys.set(id, key);
    }
    return key;
  }
}

/** What the request claims, from its Authorization header or its presigned query; throws S3Error if it claims nothing valid. */
function readClaim(request: IncomingRequest, pairs: ReadonlyArray<[string, string]>, now: Date): Claim {
  const authorization = request.headers.authorization;
  const presigned = pairs.some(([name]) => name === 'X-Amz-Algorithm' || name === 'X-Amz-Credential' || name === 'X-Amz-Signature');
  if (authorization !== undefined && presigned) {
    throw new S3Error('InvalidArgument', 'only one auth mechanism is allowed: send either the Authorization header or the X-Amz-* query parameters of a presigned URL, not both');
  }
  if (presigned) return readPresignedClaim(pairs, now);
  if (authorization !== undefined) return readHeaderClaim(authorization, request.headers, now);
  if (pairs.some(([name]) => name === 'AWSAccessKeyId')) throw unsupportedMechanism('AWS (signature version 2)');
  throw new S3Error('AccessDenied', 'anonymous requests are not served: sign requests with SigV4 (AWS4-HMAC-SHA256) using an access key granary issued');
}

function unsupportedMechanism(name: string): S3Error {
  return new S3Error('InvalidRequest', `the authorization mechanism ${name} is not supported: sign with AWS4-HMAC-SHA256 (SigV4; for boto3, signature_version='s3v4')`);
}

/** The claim of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`. */
function readHeaderClaim(authorization: string, headers: IncomingRequest['headers'], now: Date): Claim {
  const match = /^(\S+)\s+(.*)$/s.exec(authorization.trim());
  const scheme = match?.[1] ?? authorization.trim();
  if (scheme !== SIGV4_ALGORITHM) throw unsupportedMechanism(scheme === 'AWS' ? 'AWS (signature version 2)' : `"${scheme.slice(0, 32)}"`);
  const fields = new Map<string, string>();
  for (const field of (match?.[2] ?? '').split(',')) {
    const equals = field.indexOf('=');
    const name = field.slice(0, Math.max(equals, 0)).trim();
    if (equals < 0 || fields.has(name)) {
      throw new S3Error(FORMS.header.malformed, `the Authorization header is malformed: write ${SIGV4_ALGORITHM} Credential=..., SignedHeaders=..., Signature=... with each once`);
    }
    fields.set(name, field.slice(equals + 1).trim());
  }
  const time = headers['x-amz-date'] ?? '';
  const signedAt = parseAmzDate(time);
  if (signedAt === undefined) throw new S3Error('AccessDenied', 'SigV4 authentication requires a valid x-amz-date header (YYYYMMDDTHHMMSSZ, UTC)');
  if (Math.abs(signedAt - now.getTime()) > MAX_CLOCK_SKEW_MS) {
    throw new S3Error(
      'RequestTimeTooSkewed',
      `the difference between the request time (${time}) and the server's time (${amzDate(now)}) is larger than ${MAX_CLOCK_SKEW_MS / 60_000} minutes: set the client machine's clock right (NTP)`,
    );
  }
  const payloadHash = headers['x-amz-content-sha256'];
  if (payloadHash === undefined) throw new S3Error('InvalidRequest', 'missing required header for this request: x-amz-content-sha256 (UNSIGNED-PAYLOAD, or the SHA-256 of the empty body)');
  return { ...readSignatureFields('header', (name) => fields.get(name), time), payloadHash: checkPayloadHash(payloadHash) };
}

/** The claim of a presigned URL's X-Amz-* query parameters. */
function readPresignedClaim(pairs: ReadonlyArray<[string, string]>, now: Date): Claim {
  const { malformed } = FORMS.presigned;
  const values = new Map<string, string>();
  for (const [given, value] of pairs) {
    // The payload hash is a hoisted header, named in whatever case the client gave the header.
    const name = given.toLowerCase() === 'x-amz-content-sha256' ? 'X-Amz-Content-Sha256' : given;
    if (!(PRESIGNED_PARAMETERS as readonly string[]).includes(name) && name !== 'X-Amz-Content-Sha256') continue;
    if (values.has(name)) throw new S3Error(malformed, `the query parameter ${name} appears more than once: give it once`);
    values.set(name, value);
  }
  const missing = PRESIGNED_PARAMETERS.filter((name) => !values.has(name));
  if (missing.length > 0) {
    throw new S3Error(malformed, `query-string authentication (SigV4) requires the parameters ${PRESIGNED_PARAMETERS.join(', ')}; missing: ${missing.join(', ')}`);
  }
  if (values.get('X-Amz-Algorithm') !== SIGV4_ALGORITHM) throw new S3Error(malformed, `X-Amz-Algorithm only supports "${SIGV4_ALGORITHM}"`);
  const time = values.get('X-Amz-Date') ?? '';
  const signedAt = parseAmzDate(time);
  if (signedAt === undefined) throw new S3Error(malformed, 'X-Amz-Date must be in the ISO 8601 basic format YYYYMMDDTHHMMSSZ (UTC)');
  const expires = values.get('X-Amz-Expires') ?? '';
  if (!/^\d{1,7}$/.test(expires) || Number(expires) > MAX_PRESIGNED_EXPIRES_SECONDS) {
    throw new S3Error(malformed, `X-Amz-Expires must be a whole number of seconds from 0 to ${MAX_PRESIGNED_EXPIRES_SECONDS} (7 days)`);
  }
  if (signedAt - now.getTime() > MAX_CLOCK_SKEW_MS) {
    throw new S3Error('AccessDenied', `Request is not valid yet: X-Amz-Date ${time} is more than ${MAX_CLOCK_SKEW_MS / 60_000} minutes after the server's time (${amzDate(now)}); check the clock of the machine that made the URL`);
  }
  if (now.getTime() > signedAt + Number(expires) * 1000) {
    throw new S3Error('AccessDenied', `Request has expired: the URL was signed at ${time} for ${expires} seconds; make a new presigned URL`);
  }
  return { ...readSignatureFields('presigned', (name) => values.get(name), time), payloadHash: checkPayloadHash(values.get('X-Amz-Content-Sha256') ?? UNSIGNED_PAYLOAD) };
}

/** The credential scope, signed headers and signature of a `form` request, its fields read with `get`; signed at `time`. */
function readSignatureFields(form: Claim['form'], get: (name: string) => string | undefined, time: string): Omit<Claim, 'payloadHash'> {
  const { malformed, credential, signedHeaders: signed, signature } = FORMS[form];
  const [credentialValue, signedValue, signatureValue] = [credential, signed, signature].map(get);
  if (credentialValue === undefined || signedValue === undefined || signatureValue === undefined) {
    throw new S3Error(malformed, `${credential}, ${signed} and ${signature} are all required`);
  }
  const parts = credentialValue.split('/');
  const [accessKeyId = '', day = '', region = '', service, terminator] = parts;
  if (parts.length !== 5 || accessKeyId === '' || region === '' || !/^\d{8}$/.test(day)) {
    throw new S3Error(malformed, `${credential} must be ACCESS_KEY_ID/YYYYMMDD/REGION/s3/aws4_request`);
  }
  if (service !== SERVICE) throw new S3Error(malformed, `${credential} names the service "${service}": this endpoint is "${SERVICE}"`);
  if (terminator !== TERMINATOR) throw new S3Error(malformed, `${credential} ends with "${terminator}": it must end with "${TERMINATOR}"`);
  if (day !== time.slice(0, 8)) throw new S3Error(malformed, `the date in ${credential} (${day}) is not the date of the request time (${time})`);
  const signedHeaders = signedValue.split(';');
  if (signedHeaders.some((name) => name === '')) throw new S3Error(malformed, `${signed} must be header names separated by ';'`);
  if (!signedHeaders.includes('host')) throw new S3Error(malformed, `${signed} must include host: the host header is always signed`);
  if (!/^[0-9a-f]{64}$/i.test(signatureValue)) throw new S3Error(malformed, `${signature} must be 64 hexadecimal digits`);
  return { form, accessKeyId, day, region, time, signedHeaders, signature: Buffer.from(signatureValue, 'hex') };
}

/** `hash` if the gateway serves requests that sign it; streaming (upload) payloads and bodies are refused. */
function checkPayloadHash(hash: string): string {
  if (hash === UNSIGNED_PAYLOAD || hash === EMPTY_BODY_SHA256) return hash;
  if (hash.startsWith('STREAMING-')) {
    throw new S3Error('InvalidRequest', `the payload ${hash.slice(0, 64)} is a streaming upload: the S3 gateway is read-only and serves GetObject, HeadObject, ListObjectsV2 and GetBucketLocation`);
  }
  throw new S3Error('InvalidRequest', `x-amz-content-sha256 must be UNSIGNED-PAYLOAD or the SHA-256 of an empty body (${EMPTY_BODY_SHA256}): the S3 gateway is read-only and takes no request body`);
}

/** Milliseconds since the epoch of `20261206T073000Z`, or undefined when it is not a valid time in that form. */
function parseAmzDate(text: string): number | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const time = Date.UTC(year, month - 1, day, hour, minute, second);
  return amzDate(new Date(time)) === text ? time : undefined;
}
