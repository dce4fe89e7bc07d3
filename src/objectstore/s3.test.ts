import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isObjectStoreError } from './errors';
import { S3Store } from './s3';

const EMPTY_LISTING = '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bucket</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>';
const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

/** A scripted HTTP server standing in for S3: answers each request with the next scripted status (then 200). */
async function scriptedServer(statuses: number[]) {
  const requests: Array<{ method: string; url: string; authorization: string }> = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', authorization: String(req.headers.authorization ?? '') });
    const status = statuses.shift() ?? 200;
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': 'application/xml' });
      res.end(status === 200 ? EMPTY_LISTING : SLOW_DOWN);
    });
  });
  server.on('connection', () => { connections += 1; });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    requests,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

const credentials = { accessKeyId: 'AKIAUNITTEST', secretAccessKey: 'unit-test-secret' };

describe('S3Store', () => {
  it('closes its keep-alive connections at close(), also those only the lean GET opened', async () => {
    const open = new Set<import('node:net').Socket>();
    const server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 3, etag: '"e"' });
      res.end('abc');
    });
    server.on('connection', (socket) => {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const store = new S3Store({ bucket: 'bucket', endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, region: 'us-east-1', credentials }, {});
    try {
      // A streamed GET (the lean path over the agent) and a ranged one into a buffer (the raw connections).
      const got = await store.get('key');
      for await (const chunk of got.body) expect(Buffer.from(chunk as Buffer).toString()).toBe('abc');
      await store.getInto('key', Buffer.alloc(3), { range: { start: 0, end: 3 } });
      expect(open.size).toBe(2);
      store.close();
      const deadline = Date.now() + 2000;
      while (open.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(open.size).toBe(0);
    } finally {
      store.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('uploads without hashing the body over https (TLS guards it), and with its SHA-256 over plain http', async () => {
    const sent: Record<string, string | undefined> = {};
    for (const protocol of ['https', 'http']) {
      const store = new S3Store({ bucket: 'bucket', endpoint: `${protocol}://127.0.0.1:9`, region: 'us-east-1', credentials, maxAttempts: 1 }, {});
      // Right after signing, the request is looked at and stopped: no server is needed.
      store.sdk.middlewareStack.addRelativeTo(() => async (args: unknown) => {
        sent[protocol] = (args as { request: { headers: Record<string, string> } }).request.headers['x-amz-content-sha256'];
        throw Object.assign(new Error('stopped after signing'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
      }, { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'stopAfterSigning' });
      await expect(store.put('key', Buffer.from('abc'))).rejects.toThrow();
      store.close();
    }
    expect(sent.https).toBe('UNSIGNED-PAYLOAD');
    expect(sent.http).toBe(createHash('sha256').update('abc').digest('hex'));
  });

  it('retries SlowDown (503) with backoff and then succeeds', async () => {
    const server = await scriptedServer([503, 503]);
    const store = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials, maxAttempts: 3 }, {});
    try {
      await expect(store.list({ prefix: '' })).resolves.toEqual({ objects: [], commonPrefixes: [] });
      expect(server.requests).toHaveLength(3);
    } finally {
      store.close();
      await server.close();
    }
  });

  it('gives up after maxAttempts with Unavailable, saying how many attempts were made', async () => {
    const server = await scriptedServer([503, 503, 503, 503]);
    const store = new S3Store({ bucket: 'bucket', endpoint: server.endpoint, region: 'us-east-1', credentials, maxAttempts: 2 }, {});
    try {
      const error = await store.list({ prefix: 'p/' }).catch((e: unknown) => e);
      expect(isObjectStoreError(error, 'Unavailable')).toBe(true);
      expect((error as Error).message).toMatch(/^list of "p\/" in s3:\/\/bucket at 127\.0\.0\.1:\d+ failed after 2 attempts \(SlowDown/);
      expect(server.requests).toHaveLength(2);
    } finally {
      store.close();
      await server.close();
    }
  });

  it('takes endpoint, credentials and path style from AWS_ENDPOINT_URL and friends, and defaults the region to us-east-1', async () => {
    const server = await scriptedServer([]);
    const saved = { region: process.env.AWS_REGION, defaultRegion: process.env.AWS_DEFAULT_REGION, config: process.env.AWS_CONFIG_FILE };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    process.env.AWS_CONFIG_FILE = '/nonexistent/granary-test-aws-config';
    const store = new S3Store({ bucket: 'bucket' }, { AWS_ENDPOINT_URL: server.endpoint, AWS_ACCESS_KEY_ID: 'AKIAFROMENV', AWS_SECRET_ACCESS_KEY: 'from-env' });
    try {
      expect(store.endpoint).toBe(server.endpoint);
      expect(store.location).toBe(`s3://bucket at ${new URL(server.endpoint).host}`);
      await store.list({ prefix: '' });
      await store.list({ prefix: 'again/' });
      expect(server.requests[0]?.url).toMatch(/^\/bucket\/?\?/);
      expect(server.requests[0]?.authorization).toMatch(/Credential=AKIAFROMENV\/\d{8}\/us-east-1\/s3\//);
      expect(server.connections()).toBe(1);
    } finally {
      store.close();
      await server.close();
      for (const [name, value] of [['AWS_REGION', saved.region], ['AWS_DEFAULT_REGION', saved.defaultRegion], ['AWS_CONFIG_FILE', saved.config]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('prefers AWS_ENDPOINT_URL_S3 and AWS_DEFAULT_REGION, and keeps user info out of the location', () => {
    const store = new S3Store({ bucket: 'b1b' }, { AWS_ENDPOINT_URL: 'http://generic:1', AWS_ENDPOINT_URL_S3: 'https://user:pass@s3.example:9000', AWS_DEFAULT_REGION: 'eu-north-1' });
    try {
      expect(store.endpoint).toBe('https://user:pass@s3.example:9000');
      expect(store.location).toBe('s3://b1b at s3.example:9000');
    } finally {
      store.close();
    }
    const aws = new S3Store({ bucket: 'b2b', region: 'us-west-2' }, {});
    expect(aws.location).toBe('s3://b2b');
    expect(aws.endpoint).toBeUndefined();
    aws.close();
  });
});
