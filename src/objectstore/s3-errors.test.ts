import { ObjectStoreError, type ObjectStoreErrorCode } from './errors';
import { toObjectStoreError } from './s3-errors';

/** An error shaped like the SDK's service and network errors. */
function sdkError(name: string, status?: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`message of ${name}`), { name, ...(status && { $metadata: { httpStatusCode: status, attempts: 1 } }), ...extra });
}

const context = { operation: 'get', bucket: 'models', key: 'llama/weights.bin', endpointHost: '10.0.0.5:9000' };

describe('toObjectStoreError', () => {
  it.each<[string, Error, ObjectStoreErrorCode]>([
    ['NoSuchKey', sdkError('NoSuchKey', 404), 'NotFound'],
    ['NotFound (HEAD, no body)', sdkError('NotFound', 404), 'NotFound'],
    ['a bare 404', sdkError('UnknownError', 404), 'NotFound'],
    ['NoSuchUpload', sdkError('NoSuchUpload', 404), 'NotFound'],
    ['NoSuchBucket', sdkError('NoSuchBucket', 404), 'NoSuchBucket'],
    ['AccessDenied', sdkError('AccessDenied', 403), 'AccessDenied'],
    ['InvalidAccessKeyId', sdkError('InvalidAccessKeyId', 403), 'AccessDenied'],
    ['SignatureDoesNotMatch', sdkError('SignatureDoesNotMatch', 403), 'AccessDenied'],
    ['ExpiredToken', sdkError('ExpiredToken', 400), 'AccessDenied'],
    ['a bare 403', sdkError('Forbidden', 403), 'AccessDenied'],
    ['versitygw unknown access key', sdkError('XAdminUserNotFound', 404), 'AccessDenied'],
    ['a rewrapped network error', sdkError('Error', undefined, { message: 'AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:1' }), 'Unavailable'],
    ['no credentials found', sdkError('CredentialsProviderError'), 'AccessDenied'],
    ['PreconditionFailed', sdkError('PreconditionFailed', 412), 'PreconditionFailed'],
    ['a bare 412', sdkError('UnknownError', 412), 'PreconditionFailed'],
    ['InvalidRange', sdkError('InvalidRange', 416), 'InvalidArgument'],
    ['EntityTooSmall', sdkError('EntityTooSmall', 400), 'InvalidArgument'],
    ['InvalidPart', sdkError('InvalidPart', 400), 'InvalidArgument'],
    ['ECONNREFUSED', Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:9000'), { code: 'ECONNREFUSED' }), 'Unavailable'],
    ['ETIMEDOUT', Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' }), 'Unavailable'],
    ['ENOTFOUND', Object.assign(new Error('getaddrinfo ENOTFOUND s3.invalid'), { code: 'ENOTFOUND' }), 'Unavailable'],
    ['socket hang up', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'Unavailable'],
    ['TimeoutError', sdkError('TimeoutError'), 'Unavailable'],
    ['a raw connection\'s HeadersTimeout', sdkError('HeadersTimeout'), 'Unavailable'],
    ['a raw connection\'s ShortBody', sdkError('ShortBody'), 'Unavailable'],
    ['a raw connection\'s BadHead', sdkError('BadHead'), 'Internal'],
    ['SlowDown after retries', sdkError('SlowDown', 503), 'Unavailable'],
    ['InternalError', sdkError('InternalError', 500), 'Unavailable'],
    ['a bare 502', sdkError('UnknownError', 502), 'Unavailable'],
    ['a bare 429', sdkError('UnknownError', 429), 'Unavailable'],
    ['anything else', sdkError('WeirdError', 400), 'Internal'],
    ['not even an Error', 'boom' as unknown as Error, 'Internal'],
  ])('maps %s', (_label, error, code) => {
    const mapped = toObjectStoreError(error, context);
    expect(mapped).toBeInstanceOf(ObjectStoreError);
    expect(mapped.code).toBe(code);
    expect(mapped.message).toContain('"llama/weights.bin" in s3://models at 10.0.0.5:9000');
  });

  it('maps a 404 of HeadBucket to NoSuchBucket', () => {
    expect(toObjectStoreError(sdkError('NotFound', 404), { operation: 'checkBucket', bucket: 'models' }).code).toBe('NoSuchBucket');
  });

  it('says what failed and what to do next, with the attempt count', () => {
    const error = sdkError('SlowDown', 503, { $metadata: { httpStatusCode: 503, attempts: 5 } });
    expect(toObjectStoreError(error, context).message).toBe(
      'get of "llama/weights.bin" in s3://models at 10.0.0.5:9000 failed after 5 attempts (SlowDown HTTP 503: message of SlowDown); check that the endpoint is reachable and healthy, then retry',
    );
  });

  it('never puts a credential in the message, and drops echoed signing fields from the cause', () => {
    const error = sdkError('SignatureDoesNotMatch', 403, {
      message: 'bad signature for AKIASECRETID using wJalrSECRETKEY',
      AWSAccessKeyId: 'AKIASECRETID',
      StringToSign: 'AWS4-HMAC-SHA256...',
      CanonicalRequest: 'GET /...',
    });
    const mapped = toObjectStoreError(error, { ...context, secrets: ['AKIASECRETID', 'wJalrSECRETKEY', ''] });
    expect(mapped.message).not.toMatch(/AKIASECRETID|wJalrSECRETKEY/);
    expect(mapped.message).toContain('[redacted]');
    expect(mapped.message).toMatch(/check the credentials/);
    expect(JSON.stringify(mapped.cause)).not.toMatch(/AKIASECRETID|AWS4-HMAC|GET \//);
  });

  it('passes an ObjectStoreError through', () => {
    const original = new ObjectStoreError('InvalidArgument', 'bad range');
    expect(toObjectStoreError(original, context)).toBe(original);
  });
});
