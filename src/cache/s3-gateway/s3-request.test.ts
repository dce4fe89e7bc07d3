import { S3Error } from './error-reply';
import { parseS3Request, resolveRange, unsupportedError, type RequestedRange, type S3Request, type UnsupportedRequest } from './s3-request';

const SUFFIX = 's3.granary.svc.cluster.local';

/** What a request of `method` to `target` (path and query, raw) with `headers` asks for. */
function parse(method: string, target: string, headers: Record<string, string> = {}): S3Request {
  const question = target.indexOf('?');
  return parseS3Request(
    { method, path: question < 0 ? target : target.slice(0, question), query: question < 0 ? '' : target.slice(question + 1), headers: { host: 'gateway:9000', ...headers } },
    { virtualHostSuffixes: [SUFFIX] },
  );
}

/** The S3Error `run` throws. */
function refusalOf(run: () => unknown): S3Error {
  try {
    run();
  } catch (error) {
    if (error instanceof S3Error) return error;
    throw error;
  }
  throw new Error('no error thrown');
}

/** What the request asks of an Unsupported one: its operation and code. */
function unsupported(method: string, target: string, headers: Record<string, string> = {}): Pick<UnsupportedRequest, 'operation' | 'code'> {
  const request = parse(method, target, headers);
  if (request.kind !== 'Unsupported') throw new Error(`${method} ${target} is ${request.kind}`);
  return { operation: request.operation, code: request.code };
}

/** The range a Range header asks for. */
function rangeOf(header: string): RequestedRange | undefined {
  const request = parse('GET', '/models/k', { range: header });
  if (request.kind !== 'GetObject') throw new Error(request.kind);
  return request.range;
}

describe('parseS3Request addressing', () => {
  it('reads the bucket and the key of a path-style request, the key percent-decoded with + a plus sign', () => {
    expect(parse('GET', '/models/llama/7b/config.json')).toMatchObject({ kind: 'GetObject', bucket: 'models', key: 'llama/7b/config.json' });
    expect(parse('GET', '/models/a%20b+c%2Bd/%C3%A9t%C3%A9/%F0%9F%98%80%26%3C')).toMatchObject({ key: 'a b+c+d/été/😀&<' });
    expect(parse('GET', '/models/dir//x/')).toMatchObject({ key: 'dir//x/' });
    expect(parse('GET', '/models')).toMatchObject({ kind: 'ListObjects', bucket: 'models' });
    expect(parse('GET', '/models/')).toMatchObject({ kind: 'ListObjects', bucket: 'models' });
    expect(parse('GET', '/')).toEqual({ kind: 'ListBuckets' });
  });

  it('reads the bucket from a virtual-hosted Host under a configured suffix, port and case aside', () => {
    expect(parse('GET', '/llama/a%20b', { host: `models.${SUFFIX}:9000` })).toMatchObject({ kind: 'GetObject', bucket: 'models', key: 'llama/a b' });
    expect(parse('GET', '/', { host: `My.Models.${SUFFIX.toUpperCase()}` })).toMatchObject({ kind: 'ListObjects', bucket: 'my.models' });
    expect(parse('GET', '/models/k', { host: `${SUFFIX}:9000` })).toMatchObject({ bucket: 'models', key: 'k' });
    expect(parse('GET', '/models/k', { host: `models.other.example:9000` })).toMatchObject({ bucket: 'models', key: 'k' });
    expect(parse('GET', '/models/k', { host: '[::1]:9000' })).toMatchObject({ bucket: 'models', key: 'k' });
    expect(parse('GET', '/', { host: SUFFIX })).toEqual({ kind: 'ListBuckets' });
  });

  it('refuses an invalid bucket name, a key over 1024 bytes and a bad escape with S3\'s codes', () => {
    expect(refusalOf(() => parse('GET', '/Models/k'))).toMatchObject({ code: 'InvalidBucketName', status: 400 });
    expect(refusalOf(() => parse('GET', '//k'))).toMatchObject({ code: 'InvalidBucketName' });
    expect(refusalOf(() => parse('GET', '/k', { host: `bad_bucket.${SUFFIX}` }))).toMatchObject({ code: 'InvalidBucketName' });
    expect(parse('GET', `/models/${'é'.repeat(512)}`)).toMatchObject({ kind: 'GetObject' });
    const tooLong = refusalOf(() => parse('GET', `/models/${'%C3%A9'.repeat(512)}x`));
    expect(tooLong).toMatchObject({ code: 'KeyTooLongError', status: 400 });
    expect(tooLong.message).toContain('1025 bytes');
    expect(refusalOf(() => parse('GET', '/models/a%2'))).toMatchObject({ code: 'InvalidURI', status: 400 });
    expect(refusalOf(() => parse('GET', '/models/%C3%28'))).toMatchObject({ code: 'InvalidURI' });
    expect(refusalOf(() => parse('GET', '/models/k?prefix=%ZZ'))).toMatchObject({ code: 'InvalidURI' });
    expect(refusalOf(() => parse('GET', 'http://gateway/models/k'))).toMatchObject({ code: 'InvalidURI' });
  });
});

describe('parseS3Request operations', () => {
  it('reads a GetObject and a HeadObject with their conditions, part and response overrides', () => {
    const request = parse(
      'GET',
      '/models/k?partNumber=3&response-content-type=text%2Fplain&response-content-disposition=attachment%3B%20filename%3D%22a%20b%22&response-cache-control=no-cache&response-content-encoding=gzip&response-content-language=fr&response-expires=Thu%2C%2001%20Dec%202026%2016%3A00%3A00%20GMT',
      { 'if-match': '"abc"', 'if-none-match': '"def", "ghi"', 'if-modified-since': 'Sun, 06 Dec 2026 10:00:00 GMT', 'if-unmodified-since': 'yesterday' },
    );
    expect(request).toEqual({
      kind: 'GetObject',
      bucket: 'models',
      key: 'k',
      partNumber: 3,
      conditions: { ifMatch: '"abc"', ifNoneMatch: '"def", "ghi"', ifModifiedSince: new Date('2026-12-06T10:00:00Z') },
      responseOverrides: {
        contentType: 'text/plain',
        contentDisposition: 'attachment; filename="a b"',
        cacheControl: 'no-cache',
        contentEncoding: 'gzip',
        contentLanguage: 'fr',
        expires: 'Thu, 01 Dec 2026 16:00:00 GMT',
      },
    });
    expect(parse('HEAD', '/models/k', { range: 'bytes=0-9' })).toEqual({ kind: 'HeadObject', bucket: 'models', key: 'k', range: { start: 0, end: 9 }, conditions: {}, responseOverrides: {} });
  });

  it('ignores the signature\'s and the SDKs\' query parameters', () => {
    const presigned = 'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261206%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261206T100000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=00';
    expect(parse('GET', `/models/k?x-id=GetObject&${presigned}&x-amz-checksum-mode=ENABLED`)).toEqual({ kind: 'GetObject', bucket: 'models', key: 'k', conditions: {}, responseOverrides: {} });
    expect(parse('GET', '/models?list-type=2&x-id=ListObjectsV2')).toMatchObject({ kind: 'ListObjectsV2' });
  });

  it('refuses a part number outside 1..10000, a part with a range, and a parameter given twice', () => {
    for (const part of ['0', '10001', '-1', '1.5', 'x', '', '000001']) expect(refusalOf(() => parse('GET', `/models/k?partNumber=${part}`))).toMatchObject({ code: 'InvalidArgument' });
    expect(parse('GET', '/models/k?partNumber=10000')).toMatchObject({ partNumber: 10000 });
    expect(refusalOf(() => parse('GET', '/models/k?partNumber=1', { range: 'bytes=0-1' }))).toMatchObject({ code: 'InvalidRequest' });
    expect(refusalOf(() => parse('GET', '/models?prefix=a&prefix=b'))).toMatchObject({ code: 'InvalidArgument' });
  });

  it('reads GetBucketLocation and HeadBucket', () => {
    expect(parse('GET', '/models?location')).toEqual({ kind: 'GetBucketLocation', bucket: 'models' });
    expect(parse('GET', '/?location=', { host: `models.${SUFFIX}` })).toEqual({ kind: 'GetBucketLocation', bucket: 'models' });
    expect(parse('HEAD', '/models')).toEqual({ kind: 'HeadBucket', bucket: 'models' });
    expect(parse('HEAD', '/models?location')).toEqual({ kind: 'HeadBucket', bucket: 'models' });
  });

  it('reads a ListObjectsV2 with S3\'s defaults, max-keys clamped to 1000', () => {
    expect(parse('GET', '/models?list-type=2')).toEqual({ kind: 'ListObjectsV2', bucket: 'models', prefix: '', maxKeys: 1000, fetchOwner: false });
    expect(parse('GET', '/models?list-type=2&prefix=a%20b%2B%2F&delimiter=%2F&max-keys=5&continuation-token=t%2B%3D&start-after=a%20a&encoding-type=url&fetch-owner=true')).toEqual({
      kind: 'ListObjectsV2',
      bucket: 'models',
      prefix: 'a b+/',
      delimiter: '/',
      maxKeys: 5,
      continuationToken: 't+=',
      startAfter: 'a a',
      encodingType: 'url',
      fetchOwner: true,
    });
    expect(parse('GET', '/models?list-type=2&max-keys=5000&delimiter=&prefix=&start-after=')).toEqual({ kind: 'ListObjectsV2', bucket: 'models', prefix: '', maxKeys: 1000, fetchOwner: false });
    expect(parse('GET', '/models?list-type=2&max-keys=0')).toMatchObject({ maxKeys: 0 });
  });

  it('refuses a bad max-keys, encoding-type or list-type with InvalidArgument', () => {
    for (const query of ['max-keys=-1', 'max-keys=ten', 'max-keys=', 'max-keys=1e3', 'encoding-type=URL', 'encoding-type=base64']) {
      expect(refusalOf(() => parse('GET', `/models?list-type=2&${query}`))).toMatchObject({ code: 'InvalidArgument', status: 400 });
      expect(refusalOf(() => parse('GET', `/models?${query}`))).toMatchObject({ code: 'InvalidArgument' });
    }
    expect(refusalOf(() => parse('GET', '/models?list-type=1'))).toMatchObject({ code: 'InvalidArgument' });
  });

  it('reads a ListObjects (version 1) with its marker', () => {
    expect(parse('GET', '/models?delimiter=%2F&marker=a%2F&max-keys=2&prefix=&encoding-type=url')).toEqual({
      kind: 'ListObjects',
      bucket: 'models',
      prefix: '',
      delimiter: '/',
      marker: 'a/',
      maxKeys: 2,
      encodingType: 'url',
    });
    expect(parse('GET', '/models?marker=')).toEqual({ kind: 'ListObjects', bucket: 'models', prefix: '', maxKeys: 1000 });
  });

  it('refuses writes with AccessDenied, reads it lacks with NotImplemented, other methods with MethodNotAllowed', () => {
    expect(unsupported('PUT', '/models/k')).toEqual({ operation: 'PutObject', code: 'AccessDenied' });
    expect(unsupported('PUT', '/models/k', { 'x-amz-copy-source': '/models/j' })).toEqual({ operation: 'CopyObject', code: 'AccessDenied' });
    expect(unsupported('DELETE', '/models/k')).toEqual({ operation: 'DeleteObject', code: 'AccessDenied' });
    expect(unsupported('POST', '/models/k?uploads')).toEqual({ operation: 'CreateMultipartUpload', code: 'AccessDenied' });
    expect(unsupported('PUT', '/models/k?partNumber=1&uploadId=u')).toEqual({ operation: 'UploadPart', code: 'AccessDenied' });
    expect(unsupported('PUT', '/models/k?partNumber=1&uploadId=u', { 'x-amz-copy-source': '/models/j' })).toEqual({ operation: 'UploadPartCopy', code: 'AccessDenied' });
    expect(unsupported('POST', '/models/k?uploadId=u')).toEqual({ operation: 'CompleteMultipartUpload', code: 'AccessDenied' });
    expect(unsupported('DELETE', '/models/k?uploadId=u')).toEqual({ operation: 'AbortMultipartUpload', code: 'AccessDenied' });
    expect(unsupported('PUT', '/models/k?tagging')).toEqual({ operation: 'PutObjectTagging', code: 'AccessDenied' });
    expect(unsupported('PUT', '/models')).toEqual({ operation: 'CreateBucket', code: 'AccessDenied' });
    expect(unsupported('DELETE', '/models')).toEqual({ operation: 'DeleteBucket', code: 'AccessDenied' });
    expect(unsupported('POST', '/models?delete')).toEqual({ operation: 'DeleteObjects', code: 'AccessDenied' });
    expect(unsupported('PUT', '/models?policy')).toEqual({ operation: 'PutBucketPolicy', code: 'AccessDenied' });
    expect(unsupported('POST', '/models/k?restore')).toEqual({ operation: 'RestoreObject', code: 'AccessDenied' });

    expect(unsupported('GET', '/models/k?acl')).toEqual({ operation: 'GetObjectAcl', code: 'NotImplemented' });
    expect(unsupported('GET', '/models?acl')).toEqual({ operation: 'GetBucketAcl', code: 'NotImplemented' });
    expect(unsupported('GET', '/models/k?tagging')).toEqual({ operation: 'GetObjectTagging', code: 'NotImplemented' });
    expect(unsupported('GET', '/models?uploads')).toEqual({ operation: 'ListMultipartUploads', code: 'NotImplemented' });
    expect(unsupported('GET', '/models?versions&list-type=2')).toEqual({ operation: 'ListObjectVersions', code: 'NotImplemented' });
    expect(unsupported('GET', '/models?policy')).toEqual({ operation: 'GetBucketPolicy', code: 'NotImplemented' });
    expect(unsupported('GET', '/models?versioning')).toEqual({ operation: 'GetBucketVersioning', code: 'NotImplemented' });
    expect(unsupported('GET', '/models/k?versionId=3HL4kqtJlcpXroDTDmJ%2Brmr')).toEqual({ operation: 'GetObject', code: 'NotImplemented' });
    expect(unsupported('HEAD', '/models/k?versionId=null')).toEqual({ operation: 'HeadObject', code: 'NotImplemented' });
    expect(unsupported('GET', '/models/k?attributes')).toEqual({ operation: 'GetObjectAttributes', code: 'NotImplemented' });
    expect(unsupported('GET', '/models/k?torrent')).toEqual({ operation: 'GetObjectTorrent', code: 'NotImplemented' });
    expect(unsupported('GET', '/models/k?uploadId=u')).toEqual({ operation: 'ListParts', code: 'NotImplemented' });
    expect(unsupported('POST', '/models/k?select&select-type=2')).toEqual({ operation: 'SelectObjectContent', code: 'NotImplemented' });

    expect(unsupported('OPTIONS', '/models/k')).toEqual({ operation: 'OPTIONS', code: 'MethodNotAllowed' });
    expect(unsupported('PATCH', '/models')).toEqual({ operation: 'PATCH', code: 'MethodNotAllowed' });
    expect(unsupported('PUT', '/')).toEqual({ operation: 'PUT', code: 'AccessDenied' });
  });

  it('keeps the bucket and key of a refused request, and refuses it naming the operation and saying the gateway is read-only', () => {
    const request = parse('PUT', '/models/a%20b');
    expect(request).toEqual({ kind: 'Unsupported', operation: 'PutObject', reason: 'the gateway only reads', code: 'AccessDenied', bucket: 'models', key: 'a b' });
    for (const [method, target] of [['PUT', '/models/k'], ['GET', '/models?acl'], ['PATCH', '/models']] as const) {
      const refused = parse(method, target) as UnsupportedRequest;
      const error = unsupportedError(refused);
      expect(error).toMatchObject({ code: refused.code, status: { AccessDenied: 403, NotImplemented: 501, MethodNotAllowed: 405 }[refused.code] });
      expect(error.message).toContain(refused.operation);
      expect(error.message).toContain('read-only');
    }
  });
});

describe('Range', () => {
  it('reads one range of the three forms', () => {
    expect(rangeOf('bytes=0-99')).toEqual({ start: 0, end: 99 });
    expect(rangeOf('bytes=100-')).toEqual({ start: 100 });
    expect(rangeOf('bytes=-500')).toEqual({ suffix: 500 });
    expect(rangeOf('bytes=-0')).toEqual({ suffix: 0 });
    expect(rangeOf('Bytes = 5 - 5 ')).toEqual({ start: 5, end: 5 });
  });

  it('ignores several ranges and malformed headers, as S3 does: the whole object', () => {
    for (const header of ['bytes=0-1,5-6', 'bytes=0-1, -5', 'bytes=5-2', 'bytes=-', 'bytes=a-b', 'bytes 0-1', 'items=0-1', '0-1', 'bytes=0x10-', 'bytes=-1-2', '']) {
      expect(rangeOf(header)).toBeUndefined();
    }
  });

  it('resolves against the size as S3 does: the end clipped, a long suffix the whole object', () => {
    expect(resolveRange(undefined, 10)).toBeUndefined();
    expect(resolveRange({ start: 0, end: 0 }, 10)).toEqual({ start: 0, end: 1 });
    expect(resolveRange({ start: 2, end: 5 }, 10)).toEqual({ start: 2, end: 6 });
    expect(resolveRange({ start: 5, end: 100 }, 10)).toEqual({ start: 5, end: 10 });
    expect(resolveRange({ start: 9 }, 10)).toEqual({ start: 9, end: 10 });
    expect(resolveRange({ suffix: 3 }, 10)).toEqual({ start: 7, end: 10 });
    expect(resolveRange({ suffix: 30 }, 10)).toEqual({ start: 0, end: 10 });
    expect(resolveRange({ start: 0, end: 1e20 }, 10)).toEqual({ start: 0, end: 10 });
  });

  it('answers a suffix of an empty object with the whole of it, and refuses what selects nothing with InvalidRange', () => {
    expect(resolveRange({ suffix: 5 }, 0)).toBeUndefined();
    for (const [range, size] of [[{ start: 10 }, 10], [{ start: 10, end: 20 }, 10], [{ start: 0 }, 0], [{ start: 0, end: 0 }, 0], [{ suffix: 0 }, 10], [{ suffix: 0 }, 0]] as const) {
      expect(refusalOf(() => resolveRange(range, size))).toMatchObject({ code: 'InvalidRange', status: 416 });
    }
  });
});
