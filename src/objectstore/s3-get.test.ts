import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { isObjectStoreError } from './errors';
import { S3Store } from './s3';
import { bucketTarget, encodeKeyPath, readBodyInto } from './s3-get';
import { scriptedServer } from './testing';
import { selfSignedCertificate } from '../../e2e/support/self-signed';

async function text(body: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

const credentials = { accessKeyId: 'AKIAUNITTEST', secretAccessKey: 'unit-test-secret' };

describe('the lean GET of S3Store', () => {
  it('signs with SigV4 (range, if-match, unsigned payload, session token) from the credentials the SDK resolved', async () => {
    const server = await scriptedServer([]);
    const env = { AWS_ENDPOINT_URL: server.endpoint, AWS_REGION: 'eu-west-3', AWS_ACCESS_KEY_ID: 'AKIAFROMENV', AWS_SECRET_ACCESS_KEY: 'from-env-secret', AWS_SESSION_TOKEN: 'session-token-xyz' };
    const store = new S3Store({ bucket: 'bucket' }, env);
    try {
      const result = await store.get('dir/a b+c=%.txt', { range: { start: 0, end: 5 }, ifMatch: 'e1' });
      expect(await text(result.body)).toBe('hello');
      expect(result).toMatchObject({ size: 5, etag: 'e1', range: { start: 0, end: 5 } });
      const request = server.requests[0]!;
      expect(request.method).toBe('GET');
      expect(request.url).toBe('/bucket/dir/a%20b%2Bc%3D%25.txt');
      expect(request.headers.range).toBe('bytes=0-4');
      expect(request.headers['if-match']).toBe('"e1"');
      expect(request.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      expect(request.headers['x-amz-security-token']).toBe('session-token-xyz');
      expect(request.headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
      expect(request.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIAFROMENV\/\d{8}\/eu-west-3\/s3\/aws4_request, SignedHeaders=host;if-match;range;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/,
      );
      expect(request.headers.authorization).not.toContain('from-env-secret');
      // The SDK's own request carries its invocation id; the lean one does not go through the SDK.
      expect(request.headers['amz-sdk-invocation-id']).toBeUndefined();
    } finally {
      store.close();
      await server.close();
    }
  });

  it('signs with credentials from the SDK\'s default chain (a shared credentials file with a session token)', async () => {
    const server = await scriptedServer([]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-creds-'));
    const file = path.join(dir, 'credentials');
    fs.writeFileSync(file, '[default]\naws_access_key_id = AKIAFROMPROFILE\naws_secret_access_key = profile-secret\naws_session_token = profile-token\n');
    const names = ['AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_ARN'] as const;
    const saved = names.map((name) => [name, process.env[name]] as const);
    for (const name of names) delete process.env[name];
    process.env.AWS_SHARED_CREDENTIALS_FILE = file;
    process.env.AWS_CONFIG_FILE = path.join(dir, 'none');
    const store = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1' }, {});
    try {
      expect(await text((await store.get('k')).body)).toBe('hello');
      expect(server.requests[0]?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAFROMPROFILE\//);
      expect(server.requests[0]?.headers['x-amz-security-token']).toBe('profile-token');
    } finally {
      store.close();
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
      for (const [name, value] of saved) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('goes through the SDK when fastGet is false', async () => {
    const server = await scriptedServer([]);
    const store = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials, fastGet: false }, {});
    try {
      expect(await text((await store.get('k')).body)).toBe('hello');
      expect(server.requests[0]?.headers['amz-sdk-invocation-id']).toBeDefined();
    } finally {
      store.close();
      await server.close();
    }
  });

  it('retries SlowDown and 500 with backoff, then gives up with Unavailable after maxAttempts', async () => {
    const server = await scriptedServer([{ status: 503 }, { status: 500, body: '' }, { status: 200, body: 'hello' }, { status: 503 }, { status: 503 }, { status: 503 }]);
    const store = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials, maxAttempts: 3 }, {});
    try {
      expect(await text((await store.get('k')).body)).toBe('hello');
      expect(server.requests).toHaveLength(3);
      const error = await store.get('k').catch((e: unknown) => e);
      expect(isObjectStoreError(error, 'Unavailable')).toBe(true);
      expect((error as Error).message).toMatch(/^get of "k" in s3:\/\/bucket at 127\.0\.0\.1:\d+ failed after 3 attempts \(SlowDown HTTP 503: Please reduce/);
    } finally {
      store.close();
      await server.close();
    }
  });

  it('maps error codes without retrying: NoSuchKey, NoSuchBucket, 403, 412, 416', async () => {
    const xml = (code: string) => `<Error><Code>${code}</Code><Message>m</Message></Error>`;
    const server = await scriptedServer([
      { status: 404, body: xml('NoSuchKey') }, { status: 404, body: xml('NoSuchBucket') }, { status: 403, body: '' },
      { status: 404, body: xml('XAdminUserNotFound') }, { status: 412, body: xml('PreconditionFailed') }, { status: 416, body: xml('InvalidRange') },
    ]);
    const store = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials }, {});
    try {
      for (const code of ['NotFound', 'NoSuchBucket', 'AccessDenied', 'AccessDenied', 'PreconditionFailed', 'InvalidArgument'] as const) {
        const error = await store.get('k').catch((e: unknown) => e);
        if (!isObjectStoreError(error, code)) throw new Error(`expected ${code}, got ${String(error)}`);
        expect(error.message).not.toContain(credentials.secretAccessKey);
      }
      expect(server.requests).toHaveLength(6);
    } finally {
      store.close();
      await server.close();
    }
  });

  it('times out a server that stops answering, before the headers and during the body', async () => {
    const server = await scriptedServer(['stall-headers', 'stall-headers', 'stall-body']);
    const store = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials, maxAttempts: 2, requestTimeoutMs: 200 }, {});
    try {
      const error = await store.get('k').catch((e: unknown) => e);
      expect(isObjectStoreError(error, 'Unavailable')).toBe(true);
      expect((error as Error).message).toMatch(/after 2 attempts \(TimeoutError ETIMEDOUT: no byte moved for 200 ms\)/);
      const stalled = await store.get('k');
      await expect(text(stalled.body)).rejects.toThrow(/no byte moved/);
    } finally {
      store.close();
      await server.close();
    }
  });

  it('retries a raw read by its connection error\'s code: a body cut short is tried again, an answer that is not HTTP is final', async () => {
    const server = await scriptedServer(['cut-body', { status: 200, body: 'hello' }, 'not-http']);
    const store = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials }, {});
    try {
      const into = Buffer.alloc(5);
      await store.getInto('k', into, { range: { start: 0, end: 5 } });
      expect(into.toString()).toBe('hello');
      expect(server.requests).toHaveLength(2);
      const error = await store.getInto('k', Buffer.alloc(5), { range: { start: 0, end: 5 } }).catch((e: unknown) => e);
      expect(isObjectStoreError(error, 'Internal')).toBe(true);
      expect((error as Error).message).toMatch(/\(BadHead: the peer answered something that is not HTTP/);
      expect(server.requests).toHaveLength(3);
    } finally {
      store.close();
      await server.close();
    }
  });

  it('reads a range of an https endpoint over a raw TLS connection trusting what its https agent trusts, and refuses a certificate it does not trust at once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-s3-tls-'));
    const certificate = selfSignedCertificate(dir);
    const server = await scriptedServer([], certificate);
    const trusting = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials, ca: certificate.cert }, {});
    const streaming = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials, ca: certificate.cert, rawReads: false }, {});
    const untrusting = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials }, {});
    try {
      const into = Buffer.alloc(5);
      expect(await trusting.getInto('k', into, { range: { start: 0, end: 5 } })).toEqual({ size: 5, etag: 'e1', range: { start: 0, end: 5 }, attempts: 1 });
      expect(into.toString()).toBe('hello');
      // A raw connection sends only the host and the signed headers; node:https's agent adds its own.
      expect(server.requests[0]?.headers.connection).toBeUndefined();
      await streaming.getInto('k', Buffer.alloc(5), { range: { start: 0, end: 5 } });
      expect(server.requests[1]?.headers.connection).toBe('keep-alive');
      const error = await untrusting.getInto('k', Buffer.alloc(5), { range: { start: 0, end: 5 } }).catch((e: unknown) => e);
      expect(isObjectStoreError(error, 'Internal')).toBe(true);
      expect(error).toMatchObject({ attempts: 1, message: expect.stringMatching(/\(TlsRefused DEPTH_ZERO_SELF_SIGNED_CERT: 127\.0\.0\.1:\d+'s TLS certificate was refused: self-signed certificate .*NODE_EXTRA_CA_CERTS/) });
      expect(server.requests).toHaveLength(2);
    } finally {
      for (const store of [trusting, streaming, untrusting]) store.close();
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a range into a buffer through node:http(s) when raw reads are off, retrying a body cut short or stalled within the call', async () => {
    const server = await scriptedServer(['cut-body', { status: 200, body: 'hello' }, 'stall-body', { status: 200, body: 'x'.repeat(100) }]);
    const store = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials, rawReads: false, requestTimeoutMs: 200 }, {});
    try {
      const into = Buffer.alloc(5);
      expect(await store.getInto('k', into, { range: { start: 0, end: 5 } })).toEqual({ size: 5, etag: 'e1', range: { start: 0, end: 5 }, attempts: 2 });
      expect(into.toString()).toBe('hello');
      const hundred = Buffer.alloc(100);
      expect(await store.getInto('k', hundred, { range: { start: 0, end: 100 } })).toMatchObject({ attempts: 2 });
      expect(hundred.toString()).toBe('x'.repeat(100));
      expect(server.requests).toHaveLength(4);
      // node:http's agent, not a raw connection (which sends only the host and the signed headers).
      expect(server.requests[0]?.headers.connection).toBe('keep-alive');
    } finally {
      store.close();
      await server.close();
    }
  });

  it('reads a range into a buffer through the SDK when the lean path is off, each try of the SDK reading its own body', async () => {
    const server = await scriptedServer(['cut-body', { status: 200, body: 'hello' }]);
    const store = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials, fastGet: false }, {});
    try {
      const into = Buffer.alloc(5);
      expect(await store.getInto('k', into, { range: { start: 0, end: 5 } })).toEqual({ size: 5, etag: 'e1', range: { start: 0, end: 5 }, attempts: 2 });
      expect(into.toString()).toBe('hello');
      expect(server.requests).toHaveLength(2);
      expect(server.requests[1]?.headers['amz-sdk-invocation-id']).toBeDefined();
      // An answer shorter than the range is not the range asked for: final, not retried.
      const error = await store.getInto('k', Buffer.alloc(10), { range: { start: 0, end: 10 } }).catch((e: unknown) => e);
      expect(isObjectStoreError(error, 'Internal')).toBe(true);
      expect((error as Error).message).toMatch(/answered 5 bytes for a 10-byte range/);
      expect(server.requests).toHaveLength(3);
    } finally {
      store.close();
      await server.close();
    }
  });

  it('aborts with the signal\'s reason, before sending and while waiting', async () => {
    const server = await scriptedServer(['stall-headers']);
    const store = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials }, {});
    try {
      await expect(store.get('k', { signal: AbortSignal.abort(new Error('gone')) })).rejects.toThrow('gone');
      const controller = new AbortController();
      const pending = store.get('k', { signal: controller.signal });
      setTimeout(() => controller.abort(new Error('cancelled by the reader')), 50);
      await expect(pending).rejects.toThrow('cancelled by the reader');
    } finally {
      store.close();
      await server.close();
    }
  });
});

describe('readBodyInto', () => {
  const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7) % 256));
  const chunks = Array.from({ length: 100 }, (_, i) => data.subarray(i * 100, (i + 1) * 100));

  it('reads a body of many chunks into one buffer', async () => {
    const into = Buffer.alloc(10_000);
    await readBodyInto(Readable.from(chunks), 10_000, into, undefined);
    expect(into.equals(data)).toBe(true);
  });

  it('refuses a body longer than the buffer, or declared so, for good; fails one that ends early as a reset', async () => {
    await expect(readBodyInto(Readable.from(chunks), 10_000, Buffer.alloc(5_000), undefined)).rejects.toMatchObject({ name: 'BadBody', transient: false });
    await expect(readBodyInto(Readable.from(chunks), 20_000, Buffer.alloc(10_000), undefined)).rejects.toMatchObject({ name: 'BadBody', message: expect.stringMatching(/20000 bytes for a 10000-byte range/) });
    await expect(readBodyInto(Readable.from(chunks.slice(0, 50)), 10_000, Buffer.alloc(10_000), undefined)).rejects.toMatchObject({ name: 'ShortBody', code: 'ECONNRESET', message: expect.stringMatching(/after 5000 of 10000 bytes/) });
  });

  it('stops with the signal\'s reason, destroying the body', async () => {
    const controller = new AbortController();
    const body = new Readable({ read() {} });
    const reading = readBodyInto(body, 10, Buffer.alloc(10), controller.signal);
    body.push(Buffer.from('01234'));
    controller.abort(new Error('the fill took too long'));
    await expect(reading).rejects.toThrow('the fill took too long');
    expect(body.destroyed).toBe(true);
  });
});

describe('bucketTarget', () => {
  it('is path-style on a custom endpoint, keeping its port and base path', () => {
    expect(bucketTarget({ bucket: 'b1', endpoint: 'http://minio:9000/base/', forcePathStyle: true, region: 'us-east-1' }))
      .toEqual({ protocol: 'http:', hostname: 'minio', port: 9000, host: 'minio:9000', pathPrefix: '/base/b1/', region: 'us-east-1' });
    expect(bucketTarget({ bucket: 'bkt', endpoint: 'https://s3.example', forcePathStyle: false, region: 'x' }))
      .toMatchObject({ hostname: 'bkt.s3.example', host: 'bkt.s3.example', pathPrefix: '/' });
  });

  it('is virtual-hosted on AWS, path-style for names with dots, and leaves other partitions to the SDK', () => {
    expect(bucketTarget({ bucket: 'data', endpoint: undefined, forcePathStyle: false, region: 'eu-central-1' }))
      .toEqual({ protocol: 'https:', hostname: 'data.s3.eu-central-1.amazonaws.com', port: undefined, host: 'data.s3.eu-central-1.amazonaws.com', pathPrefix: '/', region: 'eu-central-1' });
    expect(bucketTarget({ bucket: 'my.data', endpoint: undefined, forcePathStyle: false, region: 'us-gov-west-1' }))
      .toMatchObject({ host: 's3.us-gov-west-1.amazonaws.com', pathPrefix: '/my.data/' });
    expect(bucketTarget({ bucket: 'data', endpoint: undefined, forcePathStyle: false, region: 'cn-north-1' })).toBeUndefined();
    expect(bucketTarget({ bucket: 'data', endpoint: 'https://u:p@host', forcePathStyle: true, region: 'us-east-1' })).toBeUndefined();
  });

  it('encodes each key segment once, as S3 signs it', () => {
    expect(encodeKeyPath("a b/ü+%=/(x)!*'~._-/")).toBe('a%20b/%C3%BC%2B%25%3D/%28x%29%21%2A%27~._-/');
  });
});
