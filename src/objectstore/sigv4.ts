// SigV4 header signing for the lean GET (src/objectstore/s3-get.ts), with the day's signing key kept, and the
// canonical request, string to sign and signing key that the S3 gateway's verifier (src/cache/s3-gateway) shares.
//
// Why not the SDK's SignatureV4 here: it derives a cache key for the signing key with an extra HMAC of the
// credentials on every request and runs each hash through async wrappers; profiled on reads of 64 KiB files it
// took ~96 µs of the mount's one thread per GET, where this takes one SHA-256 and one HMAC. The output is the
// same bytes as the SDK's (a unit test signs the same requests with both).
import { createHash, createHmac } from 'node:crypto';

/** The credentials a request is signed with (the SDK's AwsCredentialIdentity, in the fields signing reads). */
export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** What one signature covers: the method, the path as sent (encoded once), the query string, and the headers to sign. */
export interface RequestToSign {
  method: string;
  path: string;
  /** The canonical query string (sorted, encoded), '' when none. */
  query: string;
  /** Lower-case names; `host` and `x-amz-content-sha256` among them. */
  headers: Record<string, string>;
}

/** The one algorithm SigV4 signs and verifies with here. */
export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';

/** The parts of a request its canonical form is built from (the signer's and the gateway's verifier's alike). */
export interface CanonicalRequestParts {
  method: string;
  /** The canonical path: each segment URI-encoded once (S3 does not double-encode), '/' kept. */
  path: string;
  /** The canonical query string (sorted by encoded name then value, encoded), '' when none. */
  query: string;
  /** Header values by lower-case name; only the signed ones are read. */
  headers: Readonly<Record<string, string | undefined>>;
  /** The signed header names, lower-case, in the order the Authorization header (or X-Amz-SignedHeaders) lists them. */
  signedHeaders: readonly string[];
  /** The hex SHA-256 of the body, or UNSIGNED-PAYLOAD. */
  payloadHash: string;
}

/** `DAY/REGION/SERVICE/aws4_request`: what a signing key is valid for. */
export function credentialScope(day: string, region: string, service: string): string {
  return `${day}/${region}/${service}/aws4_request`;
}

/** SigV4's canonical request: header values trimmed with inner runs of whitespace collapsed to one space. */
export function canonicalRequest(parts: CanonicalRequestParts): string {
  let canonicalHeaders = '';
  for (const name of parts.signedHeaders) canonicalHeaders += `${name}:${(parts.headers[name] ?? '').trim().replace(/\s+/g, ' ')}\n`;
  return [parts.method, parts.path, parts.query, canonicalHeaders, parts.signedHeaders.join(';'), parts.payloadHash].join('\n');
}

/** The string a signature is the HMAC of: algorithm, time (basic ISO 8601), scope and the canonical request's hash. */
export function stringToSign(time: string, scope: string, canonical: string): string {
  return `${SIGV4_ALGORITHM}\n${time}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
}

/** The day's signing key: the HMAC chain of the secret over day, region, service and "aws4_request". */
export function deriveSigningKey(secret: string, day: string, region: string, service: string): Buffer {
  let key = createHmac('sha256', `AWS4${secret}`).update(day).digest();
  for (const part of [region, service, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  return key;
}

/** The signature of `toSign` under `key`, as raw bytes (hex-encode it for the wire). */
export function signatureBytes(key: Buffer, toSign: string): Buffer {
  return createHmac('sha256', key).update(toSign).digest();
}

/** SigV4's URI encoding of a path segment or a query name or value: everything but RFC 3986 unreserved characters is escaped. */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `20261206T073000Z`: SigV4's basic ISO 8601 time. */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** Signs requests of one service in one region, keeping the signing key while the day and the credentials stay. */
export class SigV4Signer {
  private key: { scope: string; secret: string; bytes: Buffer } | undefined;

  constructor(
    private readonly region: string,
    private readonly service: string,
  ) {}

  /** The headers to send: the request's, plus x-amz-date, x-amz-security-token (with a session token) and authorization. */
  sign(request: RequestToSign, credentials: SigningCredentials, date: Date): Record<string, string> {
    const time = amzDate(date);
    const day = time.slice(0, 8);
    const scope = credentialScope(day, this.region, this.service);
    const headers: Record<string, string> = { ...request.headers, 'x-amz-date': time };
    if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
    const signedHeaders = Object.keys(headers).sort();
    const canonical = canonicalRequest({ ...request, headers, signedHeaders, payloadHash: headers['x-amz-content-sha256'] ?? '' });
    const signature = signatureBytes(this.signingKey(scope, day, credentials.secretAccessKey), stringToSign(time, scope, canonical)).toString('hex');
    headers.authorization = `${SIGV4_ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`;
    return headers;
  }

  /** The day's key, kept until the day or the secret changes. */
  private signingKey(scope: string, day: string, secret: string): Buffer {
    const kept = this.key;
    if (kept && kept.scope === scope && kept.secret === secret) return kept.bytes;
    const bytes = deriveSigningKey(secret, day, this.region, this.service);
    this.key = { scope, secret, bytes };
    return bytes;
  }
}
