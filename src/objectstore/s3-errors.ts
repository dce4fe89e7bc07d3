import { isTransientConnectionFailure } from '../net/errors';
import { ObjectStoreError, type ObjectStoreErrorCode } from './errors';

/** What an S3 call was doing when it failed, for the error message. */
export interface S3ErrorContext {
  /** The action, e.g. "get" or "upload of part 3". */
  operation: string;
  bucket: string;
  key?: string;
  /** Host of a custom endpoint, when there is one. */
  endpointHost?: string;
  /** Strings that must never appear in a message (access key id, secret, session token). */
  secrets?: string[];
}

/** Network failures: nothing answered, or the connection broke or stalled. */
const NETWORK_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED']);

/** S3 error codes by the ObjectStoreError code they become. */
const S3_CODES: Record<string, ObjectStoreErrorCode> = {
  NoSuchKey: 'NotFound',
  NotFound: 'NotFound',
  NoSuchUpload: 'NotFound',
  NoSuchBucket: 'NoSuchBucket',
  AccessDenied: 'AccessDenied',
  Forbidden: 'AccessDenied',
  InvalidAccessKeyId: 'AccessDenied',
  SignatureDoesNotMatch: 'AccessDenied',
  ExpiredToken: 'AccessDenied',
  InvalidToken: 'AccessDenied',
  AllAccessDisabled: 'AccessDenied',
  AccountProblem: 'AccessDenied',
  CredentialsProviderError: 'AccessDenied',
  // versitygw's answer (HTTP 404) for an access key it does not know, where AWS says InvalidAccessKeyId.
  XAdminUserNotFound: 'AccessDenied',
  PreconditionFailed: 'PreconditionFailed',
  InvalidRange: 'InvalidArgument',
  EntityTooSmall: 'InvalidArgument',
  EntityTooLarge: 'InvalidArgument',
  InvalidPart: 'InvalidArgument',
  InvalidPartOrder: 'InvalidArgument',
  InvalidPartNumber: 'InvalidArgument',
  InvalidArgument: 'InvalidArgument',
  InvalidRequest: 'InvalidArgument',
  KeyTooLongError: 'InvalidArgument',
  InvalidBucketName: 'InvalidArgument',
  MalformedXML: 'InvalidArgument',
  SlowDown: 'Unavailable',
  ServiceUnavailable: 'Unavailable',
  InternalError: 'Unavailable',
  RequestTimeout: 'Unavailable',
  TimeoutError: 'Unavailable',
  Throttling: 'Unavailable',
  ThrottlingException: 'Unavailable',
  RequestTimeTooSkewed: 'AccessDenied',
};

/** Fields some servers echo back in auth errors (signing inputs); dropped from the kept cause so logs never carry them. */
const ECHOED_AUTH_FIELDS = ['AWSAccessKeyId', 'StringToSign', 'StringToSignBytes', 'SignatureProvided', 'CanonicalRequest', 'CanonicalRequestBytes', 'HostId'];

/** What to do next, by code. */
const NEXT_STEP: Record<ObjectStoreErrorCode, string> = {
  NotFound: 'the object does not exist (deleted, or never written)',
  NoSuchBucket: 'check the bucket name, the endpoint and the region',
  AccessDenied: 'check the credentials (access key, secret key, session token, clock) and that the bucket policy allows this call',
  PreconditionFailed: 'the object changed since it was read; read it again',
  InvalidArgument: 'the request was refused as malformed; check the key, range or part sizes',
  Unavailable: 'check that the endpoint is reachable and healthy, then retry',
  Internal: 'unexpected answer from the object store; see the cause',
};

interface SdkErrorShape {
  name?: unknown;
  Code?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

function codeFor(error: SdkErrorShape, operation: string): ObjectStoreErrorCode {
  const name = typeof error.name === 'string' ? error.name : '';
  const s3Code = typeof error.Code === 'string' ? error.Code : name;
  const errno = typeof error.code === 'string' ? error.code : '';
  const status = error.$metadata?.httpStatusCode;
  const message = typeof error.message === 'string' ? error.message : '';
  // The SDK's retry layer may rewrap a network error into a plain message (e.g. when it comes from another realm).
  const errnoInMessage = /\b(E[A-Z_]+)\b/.exec(message)?.[1] ?? '';
  if (NETWORK_ERROR_CODES.has(errno) || NETWORK_ERROR_CODES.has(errnoInMessage) || /socket hang up/i.test(message)) return 'Unavailable';
  // The lean GET's raw connections name their failures (src/net/errors.ts): the transient ones are the network's.
  if (isTransientConnectionFailure(name)) return 'Unavailable';
  const byCode = S3_CODES[s3Code];
  // HeadBucket has no body: a bare 404 there is the bucket's.
  if (operation === 'checkBucket' && (s3Code === 'NotFound' || (!byCode && status === 404))) return 'NoSuchBucket';
  if (byCode) return byCode;
  if (status === 404) return 'NotFound';
  if (status === 401 || status === 403) return 'AccessDenied';
  if (status === 412) return 'PreconditionFailed';
  if (status === 416) return 'InvalidArgument';
  if (status === 429 || (status !== undefined && status >= 500)) return 'Unavailable';
  return 'Internal';
}

function redact(text: string, secrets: string[]): string {
  return secrets.filter((secret) => secret.length >= 4).reduce((out, secret) => out.split(secret).join('[redacted]'), text);
}

/**
 * Maps any error from an S3 call to an ObjectStoreError whose message says what failed, on which key and bucket,
 * and the next step; the message never contains credentials, and the kept cause loses echoed signing fields.
 */
export function toObjectStoreError(error: unknown, context: S3ErrorContext): ObjectStoreError {
  if (error instanceof ObjectStoreError) return error;
  const shape: SdkErrorShape = typeof error === 'object' && error !== null ? (error as SdkErrorShape) : { message: String(error) };
  const code = codeFor(shape, context.operation);
  if (typeof error === 'object' && error !== null) {
    for (const field of ECHOED_AUTH_FIELDS) delete (error as Record<string, unknown>)[field];
  }
  const where = `s3://${context.bucket}${context.endpointHost ? ` at ${context.endpointHost}` : ''}`;
  const subject = context.key === undefined ? `${context.operation} of ${where}` : `${context.operation} of "${context.key}" in ${where}`;
  const name = typeof shape.Code === 'string' ? shape.Code : typeof shape.name === 'string' ? shape.name : 'Error';
  const errno = typeof shape.code === 'string' && shape.code !== name ? ` ${shape.code}` : '';
  const status = shape.$metadata?.httpStatusCode ? ` HTTP ${shape.$metadata.httpStatusCode}` : '';
  const detail = typeof shape.message === 'string' && shape.message !== '' && shape.message !== name ? `: ${shape.message}` : '';
  const attempts = (shape.$metadata?.attempts ?? 0) > 1 ? ` after ${shape.$metadata?.attempts} attempts` : '';
  const message = `${subject} failed${attempts} (${name}${errno}${status}${detail}); ${NEXT_STEP[code]}`;
  return new ObjectStoreError(code, redact(message, context.secrets ?? []), { cause: error, ...(shape.$metadata?.attempts !== undefined && { attempts: shape.$metadata.attempts }) });
}
