import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import * as sigv4 from '../../objectstore/sigv4';
import { errorReply, S3Error, type S3ErrorCode } from './error-reply';
import { decodeQuery, SigV4Verifier, SIGNING_KEYS_KEPT, type IncomingRequest } from './sigv4-verify';

const ACCESS_KEY_ID = 'AKIAGRANARYTEST0001';
const SECRET = 'granary/test+secret=0123456789abcdef';
const credentials = { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET };
const secretOf = (id: string): string | undefined => (id === ACCESS_KEY_ID ? SECRET : undefined);
const HOST = 'gateway.test:7480';
const sha256 = new S3Client({ region: 'us-east-1' }).config.sha256;

/** Keys and listing values with characters clients must encode: spaces, '+', '=', unicode, '~', '!' and '*'. */
const KEY = 'dir one/na\u00efve \u2713 file+1=2~x!(*).bin';
const PREFIX = 'dir one/\u00fc+=~ ';
const CONTINUATION = 'tok en+/=~\u00fc';

/** What `error` is refused with, when it is an S3Error. */
function refusal(action: () => unknown): { code: S3ErrorCode; message: string } | 'accepted' {
  try {
    action();
    return 'accepted';
  } catch (error) {
    if (!(error instanceof S3Error)) throw error;
    expect(error.message).not.toContain(SECRET);
    return { code: error.code, message: error.message };
  }
}

/** The query as the SDK writes it on the wire (@smithy/querystring-builder: each name and value URI-encoded). */
function wireQuery(query: Record<string, string | string[] | null | undefined> = {}): string {
  return Object.entries(query)
    .flatMap(([name, value]) => (Array.isArray(value) ? value : [value ?? '']).map((one) => `${sigv4.uriEncode(name)}=${sigv4.uriEncode(one)}`))
    .join('&');
}

/** The path of `key` in `bucket` as the SDK sends it, path-style. */
const objectPath = (bucket: string, key: string): string => `/${bucket}/${key.split('/').map(sigv4.uriEncode).join('/')}`;

/** A request signed in the Authorization header by the SDK's SignatureV4, as the gateway receives it. */
async function headerSigned(
  request: { method?: string; path: string; query?: Record<string, string>; headers?: Record<string, string> },
  options: { date?: Date; secret?: string; service?: string; unsignable?: string[] } = {},
): Promise<IncomingRequest> {
  const signer = new SignatureV4({
    credentials: { ...credentials, secretAccessKey: options.secret ?? SECRET },
    region: 'eu-west-3', service: options.service ?? 's3', sha256, uriEscapePath: false, applyChecksum: false,
  });
  const headers = { host: HOST, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...request.headers };
  const method = request.method ?? 'GET';
  const query = request.query ?? {};
  const signed = await signer.sign(
    { method, protocol: 'http:', hostname: 'gateway.test', port: 7480, path: request.path, query, headers },
    { signingDate: options.date ?? new Date(), ...(options.unsignable && { unsignableHeaders: new Set(options.unsignable) }) },
  );
  return { method, path: request.path, query: wireQuery(query), headers: lowerCased(signed.headers) };
}

/**
 * A presigned GET made as @aws-sdk/s3-request-presigner's getSignedUrl makes it (not installed here): the payload
 * declared UNSIGNED-PAYLOAD (the header hoisted into the query), then SignatureV4.presign.
 */
async function presigned(path: string, options: { date?: Date; expiresIn?: number; query?: Record<string, string> } = {}): Promise<IncomingRequest> {
  const signer = new SignatureV4({ credentials, region: 'eu-west-3', service: 's3', sha256, uriEscapePath: false });
  const signed = await signer.presign(
    { method: 'GET', protocol: 'http:', hostname: 'gateway.test', port: 7480, path, query: { 'x-id': 'GetObject', ...options.query }, headers: { host: HOST, 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' } },
    { signingDate: options.date ?? new Date(), expiresIn: options.expiresIn ?? 900, unsignableHeaders: new Set(['content-type']) },
  );
  return { method: 'GET', path, query: wireQuery(signed.query), headers: lowerCased(signed.headers) };
}

function lowerCased(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

/** `request` with one query parameter's raw value replaced. */
function withQueryParameter(request: IncomingRequest, name: string, value: string): IncomingRequest {
  const query = request.query.split('&').map((part) => (part.startsWith(`${name}=`) ? `${name}=${value}` : part)).join('&');
  return { ...request, query };
}

describe('SigV4Verifier, with requests the AWS SDK sends over HTTP', () => {
  let server: http.Server;
  let endpoint: string;
  const clientWith = (options: { accessKeyId?: string; secretAccessKey?: string; systemClockOffset?: number } = {}): S3Client => {
    const { systemClockOffset, ...keys } = options;
    return new S3Client({ region: 'eu-west-3', endpoint, forcePathStyle: true, maxAttempts: 1, credentials: { ...credentials, ...keys }, ...(systemClockOffset !== undefined && { systemClockOffset }) });
  };
  const received: IncomingRequest[] = [];
  const verifier = new SigV4Verifier(secretOf);

  beforeAll(async () => {
    // The gateway's part here: read the request as it arrived, verify it, answer S3's error or an empty success.
    server = http.createServer((req, res) => {
      const url = req.url ?? '/';
      const question = url.indexOf('?');
      const request: IncomingRequest = {
        method: req.method ?? '',
        path: question < 0 ? url : url.slice(0, question),
        query: question < 0 ? '' : url.slice(question + 1),
        headers: Object.fromEntries(Object.entries(req.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(',') : value])),
      };
      received.push(request);
      req.resume();
      try {
        verifier.verify(request, new Date());
        const listing = request.query.includes('list-type=2');
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(listing ? '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>data-bucket</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>' : '');
      } catch (error) {
        const reply = errorReply(error as S3Error, { method: request.method, resource: request.path, requestId: 'test' });
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('accepts a ranged GetObject, a HeadObject and a ListObjectsV2 whose key, prefix and token need encoding', async () => {
    const client = clientWith();
    await client.send(new GetObjectCommand({ Bucket: 'data-bucket', Key: KEY, Range: 'bytes=0-65535' }));
    await client.send(new HeadObjectCommand({ Bucket: 'data-bucket', Key: KEY }));
    await client.send(new ListObjectsV2Command({ Bucket: 'data-bucket', Prefix: PREFIX, Delimiter: '/', ContinuationToken: CONTINUATION, StartAfter: 'a+b c' }));
    const [get, head, list] = received.slice(-3) as [IncomingRequest, IncomingRequest, IncomingRequest];
    expect(get.headers.range).toBe('bytes=0-65535');
    expect(get.headers.authorization).toContain('range');
    expect(head.method).toBe('HEAD');
    expect(decodeQuery(list.query)).toEqual(expect.arrayContaining([['prefix', PREFIX], ['continuation-token', CONTINUATION], ['start-after', 'a+b c']]));
    expect(verifier.verify(get, new Date())).toEqual({ accessKeyId: ACCESS_KEY_ID, region: 'eu-west-3', form: 'header' });
  });

  it('answers S3 errors the SDK reports by code: an unknown key, a wrong secret, a skewed clock', async () => {
    const get = (client: S3Client) => client.send(new GetObjectCommand({ Bucket: 'data-bucket', Key: KEY })).catch((error: unknown) => error);
    expect(await get(clientWith({ accessKeyId: 'AKIAUNKNOWNKEY000001' }))).toMatchObject({ name: 'InvalidAccessKeyId', $metadata: { httpStatusCode: 403 } });
    expect(await get(clientWith({ secretAccessKey: 'a-wrong-secret-of-twenty-chars' }))).toMatchObject({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
    expect(await get(clientWith({ systemClockOffset: 20 * 60_000 }))).toMatchObject({ name: 'RequestTimeTooSkewed', $metadata: { httpStatusCode: 403 } });
    // HEAD answers carry no body: the SDK has only the status to go by.
    expect(await clientWith({ secretAccessKey: 'a-wrong-secret-of-twenty-chars' }).send(new HeadObjectCommand({ Bucket: 'data-bucket', Key: KEY })).catch((error: unknown) => error)).toMatchObject({
      $metadata: { httpStatusCode: 403 },
    });
  });
});

describe('SigV4Verifier, header form', () => {
  const verifier = new SigV4Verifier(secretOf);
  const now = new Date();
  const path = objectPath('data-bucket', KEY);

  it('accepts what the SDK signs: path and query that need encoding, a range, a session token, spaced header values', async () => {
    const request = await headerSigned({
      path,
      query: { 'list-type': '2', prefix: PREFIX, 'continuation-token': CONTINUATION },
      headers: { range: 'bytes=0-9', 'if-match': '"abc   def"', 'x-amz-security-token': 'TOKEN/with+chars=' },
    });
    expect(verifier.verify(request, now)).toEqual({ accessKeyId: ACCESS_KEY_ID, region: 'eu-west-3', form: 'header' });
    expect(refusal(() => verifier.verify({ ...request, headers: { ...request.headers, 'if-match': '  "abc def"  ' } }, now))).toBe('accepted');
  });

  it('reads the path and the query as S3 does: escapes in any case, unreserved characters escaped or not, parameters in any order', async () => {
    const request = await headerSigned({ path: '/data-bucket/a~b/%C3%BC%20c', query: { b: '1', a: 'x y~', 'a-b': '' } });
    const respelled = { ...request, path: '/data-bucket/a%7Eb/%c3%bc%20%63', query: 'a-b=&b=1&a=x%20y%7E' };
    expect(refusal(() => verifier.verify(respelled, now))).toBe('accepted');
    // A '+' on the wire is a plus sign, not a space.
    const plus = await headerSigned({ path: '/data-bucket/a%2Bb', query: { prefix: 'a+b' } });
    expect(refusal(() => verifier.verify({ ...plus, path: '/data-bucket/a+b', query: 'prefix=a+b' }, now))).toBe('accepted');
    expect(refusal(() => verifier.verify({ ...plus, path: '/data-bucket/a%20b' }, now))).toMatchObject({ code: 'SignatureDoesNotMatch' });
  });

  it('accepts the empty-body hash as the payload', async () => {
    const request = await headerSigned({ path, headers: { 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' } });
    expect(refusal(() => verifier.verify(request, now))).toBe('accepted');
  });

  it('refuses a tampered path, query or signed header, and a missing signed header', async () => {
    const request = await headerSigned({ path, query: { prefix: PREFIX }, headers: { range: 'bytes=0-9' } });
    expect(refusal(() => verifier.verify({ ...request, path: objectPath('data-bucket', 'other') }, now))).toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(refusal(() => verifier.verify({ ...request, method: 'HEAD' }, now))).toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(refusal(() => verifier.verify(withQueryParameter(request, 'prefix', 'dir%20two%2F'), now))).toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(refusal(() => verifier.verify({ ...request, query: `${request.query}&max-keys=1` }, now))).toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(refusal(() => verifier.verify({ ...request, headers: { ...request.headers, range: 'bytes=0-99999' } }, now))).toMatchObject({ code: 'SignatureDoesNotMatch' });
    const { range: _range, ...withoutRange } = request.headers;
    expect(refusal(() => verifier.verify({ ...request, headers: withoutRange }, now))).toEqual({ code: 'SignatureDoesNotMatch', message: expect.stringContaining('"range" is not in the request') });
  });

  it('refuses a wrong secret and an unknown key, naming neither the secret nor the expected signature', async () => {
    const right = await headerSigned({ path }, { date: now });
    const wrong = await headerSigned({ path }, { date: now, secret: 'not-the-secret-0123456789' });
    const refused = refusal(() => verifier.verify(wrong, now));
    expect(refused).toMatchObject({ code: 'SignatureDoesNotMatch' });
    const expectedSignature = /Signature=([0-9a-f]{64})/.exec(right.headers.authorization ?? '')?.[1] as string;
    expect(JSON.stringify(refused)).not.toContain(expectedSignature);
    const signed = await headerSigned({ path });
    const unknown = { ...signed, headers: { ...signed.headers, authorization: signed.headers.authorization?.replace(ACCESS_KEY_ID, 'AKIAUNKNOWNKEY000001') } };
    expect(refusal(() => verifier.verify(unknown, now))).toMatchObject({ code: 'InvalidAccessKeyId', message: expect.stringContaining('AKIAUNKNOWNKEY000001') });
  });

  it('refuses a request more than 15 minutes from the server\'s time, either way', async () => {
    const request = await headerSigned({ path }, { date: now });
    const minutes = (n: number) => new Date(now.getTime() + n * 60_000);
    expect(refusal(() => verifier.verify(request, minutes(14)))).toBe('accepted');
    expect(refusal(() => verifier.verify(request, minutes(-14)))).toBe('accepted');
    expect(refusal(() => verifier.verify(request, minutes(16)))).toMatchObject({ code: 'RequestTimeTooSkewed', message: expect.stringContaining('clock') });
    expect(refusal(() => verifier.verify(request, minutes(-16)))).toMatchObject({ code: 'RequestTimeTooSkewed' });
  });

  it('refuses a signature that leaves host out, another service, a scope dated another day', async () => {
    const noHost = await headerSigned({ path }, { unsignable: ['host'] });
    expect(noHost.headers.authorization).not.toMatch(/SignedHeaders=[^,]*host/);
    expect(refusal(() => verifier.verify(noHost, now))).toEqual({ code: 'AuthorizationHeaderMalformed', message: expect.stringContaining('must include host') });
    const ec2 = await headerSigned({ path }, { service: 'ec2' });
    expect(refusal(() => verifier.verify(ec2, now))).toEqual({ code: 'AuthorizationHeaderMalformed', message: expect.stringContaining('"ec2"') });
    const request = await headerSigned({ path }, { date: now });
    const otherDay = { ...request, headers: { ...request.headers, authorization: request.headers.authorization?.replace(/\/\d{8}\//, '/19990101/') } };
    expect(refusal(() => verifier.verify(otherDay, now))).toMatchObject({ code: 'AuthorizationHeaderMalformed', message: expect.stringContaining('19990101') });
  });

  it('refuses streaming (upload) payloads and other payload hashes: the gateway is read-only', async () => {
    const streaming = await headerSigned({ method: 'PUT', path, headers: { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'x-amz-decoded-content-length': '10' } });
    expect(refusal(() => verifier.verify(streaming, now))).toEqual({ code: 'InvalidRequest', message: expect.stringContaining('read-only') });
    const body = await headerSigned({ method: 'PUT', path, headers: { 'x-amz-content-sha256': 'a'.repeat(64) } });
    expect(refusal(() => verifier.verify(body, now))).toMatchObject({ code: 'InvalidRequest' });
    const { 'x-amz-content-sha256': _hash, ...noHash } = (await headerSigned({ path })).headers;
    expect(refusal(() => verifier.verify({ method: 'GET', path, query: '', headers: noHash }, now))).toEqual({ code: 'InvalidRequest', message: expect.stringContaining('x-amz-content-sha256') });
  });

  it('refuses no authentication, other mechanisms and malformed headers with what to fix', async () => {
    const bare: IncomingRequest = { method: 'GET', path, query: '', headers: { host: HOST } };
    expect(refusal(() => verifier.verify(bare, now))).toEqual({ code: 'AccessDenied', message: expect.stringContaining('anonymous requests are not served') });
    expect(refusal(() => verifier.verify({ ...bare, headers: { ...bare.headers, authorization: 'AWS AKIAGRANARYTEST0001:c2lnbmF0dXJl' } }, now))).toEqual({ code: 'InvalidRequest', message: expect.stringContaining('signature version 2') });
    expect(refusal(() => verifier.verify({ ...bare, query: 'AWSAccessKeyId=AKIAGRANARYTEST0001&Signature=x&Expires=1' }, now))).toMatchObject({ code: 'InvalidRequest' });
    const request = await headerSigned({ path });
    const authorization = request.headers.authorization ?? '';
    const malformed = (value: string) => refusal(() => verifier.verify({ ...request, headers: { ...request.headers, authorization: value } }, now));
    expect(malformed(authorization.replace(/, Signature=/, ', Signature=0'))).toEqual({ code: 'AuthorizationHeaderMalformed', message: expect.stringContaining('64 hexadecimal digits') });
    expect(malformed(authorization.replace(/SignedHeaders=/, 'Signed='))).toMatchObject({ code: 'AuthorizationHeaderMalformed' });
    expect(malformed(`${authorization}, Signature=${'0'.repeat(64)}`)).toMatchObject({ code: 'AuthorizationHeaderMalformed' });
    expect(malformed(authorization.replace('/aws4_request', '/aws4_reqest'))).toEqual({ code: 'AuthorizationHeaderMalformed', message: expect.stringContaining('aws4_request') });
    expect(malformed(authorization.replace(/Credential=[^,]*/, 'Credential=AKIAGRANARYTEST0001/eu-west-3/s3/aws4_request'))).toMatchObject({ code: 'AuthorizationHeaderMalformed' });
    const { 'x-amz-date': _date, ...noDate } = request.headers;
    expect(refusal(() => verifier.verify({ ...request, headers: noDate }, now))).toEqual({ code: 'AccessDenied', message: expect.stringContaining('x-amz-date') });
    expect(refusal(() => verifier.verify({ ...request, path: '/data-bucket/%E2%9C' }, now))).toMatchObject({ code: 'InvalidURI' });
  });
});

describe('SigV4Verifier, presigned URLs', () => {
  const verifier = new SigV4Verifier(secretOf);
  const now = new Date();
  const path = objectPath('data-bucket', KEY);
  const minutes = (n: number) => new Date(now.getTime() + n * 60_000);

  it('accepts a presigned GET, with query parameters that need encoding, within its lifetime', async () => {
    const request = await presigned(path, { date: now, expiresIn: 3600, query: { 'response-content-disposition': 'attachment; filename="a b+c.bin"' } });
    expect(request.query).toContain('X-Amz-Content-Sha256=UNSIGNED-PAYLOAD');
    expect(verifier.verify(request, now)).toEqual({ accessKeyId: ACCESS_KEY_ID, region: 'eu-west-3', form: 'presigned' });
    expect(refusal(() => verifier.verify(request, minutes(59)))).toBe('accepted');
    // boto3's presigned URLs sign UNSIGNED-PAYLOAD without saying so in the query.
    const signer = new SignatureV4({ credentials, region: 'eu-west-3', service: 's3', sha256, uriEscapePath: false });
    const unsaid = new Set(['x-amz-content-sha256']);
    const boto = await signer.presign(
      { method: 'GET', protocol: 'http:', hostname: 'gateway.test', port: 7480, path, query: {}, headers: { host: HOST, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
      { signingDate: now, expiresIn: 60, unsignableHeaders: unsaid, unhoistableHeaders: unsaid },
    );
    expect(boto.query).not.toHaveProperty('X-Amz-Content-Sha256');
    expect(refusal(() => verifier.verify({ method: 'GET', path, query: wireQuery(boto.query), headers: { host: HOST } }, now))).toBe('accepted');
  });

  it('refuses an expired URL, and one dated more than 15 minutes ahead', async () => {
    const request = await presigned(path, { date: now, expiresIn: 600 });
    expect(refusal(() => verifier.verify(request, minutes(11)))).toEqual({ code: 'AccessDenied', message: expect.stringContaining('Request has expired') });
    expect(refusal(() => verifier.verify(request, minutes(-14)))).toBe('accepted');
    expect(refusal(() => verifier.verify(request, minutes(-16)))).toEqual({ code: 'AccessDenied', message: expect.stringContaining('not valid yet') });
  });

  it('refuses a tampered path or query, a wrong lifetime, a missing parameter, both mechanisms at once', async () => {
    const request = await presigned(path, { date: now });
    expect(refusal(() => verifier.verify({ ...request, path: objectPath('data-bucket', 'other') }, now))).toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(refusal(() => verifier.verify(withQueryParameter(request, 'X-Amz-Expires', '901'), now))).toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(refusal(() => verifier.verify({ ...request, query: `${request.query}&response-content-type=text%2Fhtml` }, now))).toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(refusal(() => verifier.verify(withQueryParameter(request, 'X-Amz-Expires', '604801'), now))).toEqual({ code: 'AuthorizationQueryParametersError', message: expect.stringContaining('604800') });
    expect(refusal(() => verifier.verify({ ...request, query: request.query.replace(/&?X-Amz-SignedHeaders=[^&]*/, '') }, now))).toEqual({
      code: 'AuthorizationQueryParametersError',
      message: expect.stringContaining('missing: X-Amz-SignedHeaders'),
    });
    expect(refusal(() => verifier.verify(withQueryParameter(request, 'X-Amz-Algorithm', 'AWS4-ECDSA-P256-SHA256'), now))).toMatchObject({ code: 'AuthorizationQueryParametersError' });
    expect(refusal(() => verifier.verify(withQueryParameter(request, 'X-Amz-SignedHeaders', 'x-id'), now))).toEqual({ code: 'AuthorizationQueryParametersError', message: expect.stringContaining('host') });
    const header = await headerSigned({ path });
    expect(refusal(() => verifier.verify({ ...request, headers: { ...request.headers, authorization: header.headers.authorization } }, now))).toMatchObject({ code: 'InvalidArgument' });
  });

  it('refuses a streaming payload declared in the query', async () => {
    const request = await presigned(path, { date: now });
    expect(refusal(() => verifier.verify(withQueryParameter(request, 'X-Amz-Content-Sha256', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER'), now))).toMatchObject({ code: 'InvalidRequest' });
    const lowerCase = { ...request, query: request.query.replace('X-Amz-Content-Sha256=UNSIGNED-PAYLOAD', 'x-amz-content-sha256=STREAMING-UNSIGNED-PAYLOAD-TRAILER') };
    expect(refusal(() => verifier.verify(lowerCase, now))).toMatchObject({ code: 'InvalidRequest' });
  });
});

describe('SigV4Verifier signing keys', () => {
  afterEach(() => jest.restoreAllMocks());

  it('derives a key once per secret, day and region while it is kept, and keeps a bounded number', async () => {
    const derive = jest.spyOn(sigv4, 'deriveSigningKey');
    const verifier = new SigV4Verifier(secretOf);
    const now = new Date();
    const signedFor = async (region: string) => {
      const signer = new SignatureV4({ credentials, region, service: 's3', sha256, uriEscapePath: false });
      const signed = await signer.sign({ method: 'GET', protocol: 'http:', hostname: 'gateway.test', path: '/b/k', query: {}, headers: { host: HOST, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } }, { signingDate: now });
      return { method: 'GET', path: '/b/k', query: '', headers: signed.headers };
    };
    const first = await signedFor('eu-west-3');
    verifier.verify(first, now);
    verifier.verify(await signedFor('eu-west-3'), now);
    expect(derive).toHaveBeenCalledTimes(1);
    expect(verifier.verify(await signedFor('minio-site-b'), now).region).toBe('minio-site-b');
    expect(derive).toHaveBeenCalledTimes(2);
    for (let i = 0; i < SIGNING_KEYS_KEPT; i++) verifier.verify(await signedFor(`region-${i}`), now);
    derive.mockClear();
    verifier.verify(first, now);
    expect(derive).toHaveBeenCalledTimes(1);
  });
});
