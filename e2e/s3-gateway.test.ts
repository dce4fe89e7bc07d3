// The cluster cache as an S3 endpoint, with the real clients users point at it: three `granary cache serve` processes
// ("nodes" on 127.0.0.1-3, one ring) each with its S3 API, in front of the real S3 server through a relay that counts
// what granary reads from the origin. aws-sdk-js reads ranges, pages a listing and fetches a presigned URL; boto3
// downloads in ranged GETs and pages with its paginator; rclone copies a prefix. Each checks sha256 of what it got,
// and the three reading the same model through three nodes cost the origin about one copy of it.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import { startCacheServer, type CacheServerProcess } from './support/cache-server';
import { s3MountEnv } from './support/mount';
import { boto3DownloadFile, boto3ListAll, rcloneCopy, type S3Target } from './support/s3-clients';
import { createBucket, freePort, s3Client, testS3 } from './support/s3-server';
import { selfSignedCertificate } from './support/self-signed';
import { startCountingRelay, type CountingRelay } from './support/tcp-relay';
import { until } from './support/until';
import { deleteBucket, makeTemp, MiB, putObjects, removeTemp, seededBytes, sha256 } from './scenarios/helpers';

jest.setTimeout(180_000);

const MODEL_KEY = 'models/llama/model.safetensors';
/** A model of several blocks (4 MiB), not a multiple of one. */
const MODEL_SIZE = 24 * MiB + 4321;
const SMALL_KEYS = Array.from({ length: 12 }, (_, i) => `models/llama/shard ${String(i).padStart(2, '0')} naïve+&.json`);
const PRIVATE_KEY = 'private/credentials.bin';
const ACCESS_KEY_ID = 'GRANARYTESTKEY0000001';
const SECRET = `gateway-secret-${randomBytes(12).toString('hex')}`;
const NODES = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];

interface Node {
  cache: CacheServerProcess;
  s3: string;
}

describe('the S3 gateway on the cache servers, read by real S3 clients', () => {
  const server = testS3();
  const origin = s3Client(server);
  let bucket: string;
  let relay: CountingRelay;
  let base: string;
  let nodes: Node[] = [];
  let tokenFile: string;
  let keysFile: string;
  const model = seededBytes('gateway-model', 0, MODEL_SIZE);
  const small = SMALL_KEYS.map((key, i) => seededBytes(key, 0, 1000 + i * 313));

  const target = (node: Node): S3Target => ({ endpoint: node.s3, region: 'us-east-1', credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET } });
  const sdk = (node: Node, secret = SECRET) => new S3Client({ endpoint: node.s3, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: secret }, maxAttempts: 1 });

  beforeAll(async () => {
    bucket = await createBucket(server, 'gateway');
    await putObjects(origin, bucket, [[MODEL_KEY, model], ...SMALL_KEYS.map((key, i) => [key, small[i] as Buffer] as const), [PRIVATE_KEY, 'not for this key']]);
    const s3 = new URL(server.endpoint);
    relay = await startCountingRelay({ host: s3.hostname, port: Number(s3.port) });
    base = makeTemp('gateway');
    tokenFile = path.join(base, 'token');
    fs.writeFileSync(tokenFile, `token-${randomBytes(12).toString('hex')}`, { mode: 0o600 });
    keysFile = path.join(base, 'keys.json');
    fs.writeFileSync(keysFile, JSON.stringify({ keys: [{ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET, grants: [`${bucket}/models/`] }] }), { mode: 0o600 });
    const ports = await Promise.all(NODES.map(() => freePort()));
    const s3Ports = await Promise.all(NODES.map(() => freePort()));
    const peers = NODES.map((host, i) => `http://${host}:${ports[i]}`);
    nodes = await Promise.all(
      NODES.map(async (host, i) => ({
        cache: await startCacheServer({
          host,
          port: ports[i] as number,
          ramBytes: '128MiB',
          diskDir: path.join(base, `disk-${i}`),
          diskBytes: '256MiB',
          peers,
          tokenFile,
          env: { ...s3MountEnv(server), AWS_ENDPOINT_URL: relay.endpoint },
          args: ['--s3-listen', `${host}:${s3Ports[i]}`, '--s3-keys-file', keysFile],
        }),
        s3: `http://${host}:${s3Ports[i]}`,
      })),
    );
    // Every node's ring holds all three before a byte is read: rings that still differ give a block two owners.
    for (const node of nodes) await until(async () => (await node.cache.metric('granary_cache_ring_members')) === NODES.length, 'every cache server sees the whole ring');
  });

  /** A cache server of its own (a ring of one) on `host`, its S3 API with `args` too; the caller stops it. */
  async function startOwnServer(host: string, args: string[]): Promise<{ cache: CacheServerProcess; s3Port: number }> {
    const [port, s3Port] = [await freePort(), await freePort()];
    const cache = await startCacheServer({
      host,
      port,
      ramBytes: '64MiB',
      diskDir: path.join(base, `disk-${host}`),
      diskBytes: '128MiB',
      peers: [`http://${host}:${port}`],
      tokenFile,
      env: { ...s3MountEnv(server), AWS_ENDPOINT_URL: relay.endpoint },
      args: ['--s3-listen', `${host}:${s3Port}`, '--s3-keys-file', keysFile, ...args],
    });
    return { cache, s3Port };
  }

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.cache.stop()));
    await relay?.close();
    if (bucket) await deleteBucket(origin, bucket);
    removeTemp(base);
  });

  it('serves the same model to aws-sdk-js, boto3 and rclone through three nodes for about one read of the origin', async () => {
    const before = relay.downstreamBytes;
    const [viaSdk, viaBoto3, viaRclone] = [nodes[0] as Node, nodes[1] as Node, nodes[2] as Node];
    // aws-sdk-js: the whole object, streamed.
    const got = await sdk(viaSdk).send(new GetObjectCommand({ Bucket: bucket, Key: MODEL_KEY }));
    expect(sha256(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()))).toBe(sha256(model));
    // boto3: download_file in ranged GETs of 8 MiB, 4 at once.
    const file = path.join(base, 'boto3-model.bin');
    const download = await boto3DownloadFile({ ...target(viaBoto3), bucket, key: MODEL_KEY, file, multipartChunkBytes: 8 * MiB });
    expect(download.sha256).toBe(sha256(model));
    expect(download.requests.filter((request) => request.range !== undefined).length).toBeGreaterThan(1);
    // rclone: a copy of the prefix, model included.
    const copied = await rcloneCopy({ ...target(viaRclone), source: `${bucket}/models/llama`, destinationDir: path.join(base, 'rclone') });
    const byName = new Map(copied.files.map((entry) => [entry.path, entry.sha256]));
    expect(byName.get('model.safetensors')).toBe(sha256(model));
    SMALL_KEYS.forEach((key, i) => expect(byName.get(key.slice('models/llama/'.length))).toBe(sha256(small[i] as Buffer)));
    expect(copied.files).toHaveLength(1 + SMALL_KEYS.length);
    // Counted outside granary: the origin sent about one copy of what was read, however many nodes served it.
    const smallBytes = small.reduce((sum, data) => sum + data.length, 0);
    const fromOrigin = relay.downstreamBytes - before;
    console.log(`3 clients on 3 nodes read ${MODEL_SIZE + smallBytes} bytes of objects each; the origin sent ${fromOrigin} (${(fromOrigin / (MODEL_SIZE + smallBytes)).toFixed(3)} × the objects, headers included)`);
    expect(fromOrigin).toBeLessThanOrEqual(1.05 * (MODEL_SIZE + smallBytes));
    expect(fromOrigin).toBeGreaterThanOrEqual(MODEL_SIZE);
  });

  it('answers ranges, HEAD and conditions as S3 does', async () => {
    const client = sdk(nodes[0] as Node);
    const ranged = await client.send(new GetObjectCommand({ Bucket: bucket, Key: MODEL_KEY, Range: 'bytes=4194000-8388999' }));
    expect(ranged.ContentRange).toBe(`bytes 4194000-8388999/${MODEL_SIZE}`);
    expect(Buffer.from(await (ranged.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(model.subarray(4194000, 8389000))).toBe(true);
    const tail = await client.send(new GetObjectCommand({ Bucket: bucket, Key: MODEL_KEY, Range: 'bytes=-100' }));
    expect(Buffer.from(await (tail.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(model.subarray(MODEL_SIZE - 100))).toBe(true);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: MODEL_KEY }));
    expect(head.ContentLength).toBe(MODEL_SIZE);
    const etag = head.ETag as string;
    await expect(client.send(new GetObjectCommand({ Bucket: bucket, Key: MODEL_KEY, IfMatch: '"not-the-etag"' }))).rejects.toMatchObject({ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
    await expect(client.send(new GetObjectCommand({ Bucket: bucket, Key: MODEL_KEY, IfNoneMatch: etag }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 304 } });
    await expect(client.send(new GetObjectCommand({ Bucket: bucket, Key: MODEL_KEY, Range: `bytes=${MODEL_SIZE}-` }))).rejects.toMatchObject({ name: 'InvalidRange', $metadata: { httpStatusCode: 416 } });
    await expect(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'models/llama/missing.bin' }))).rejects.toMatchObject({ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
  });

  it('serves GetObject and HeadObject by partNumber: the part of a multipart object, its Content-Range and parts count, 416 past the last', async () => {
    const key = 'models/multipart/parts.bin';
    const sizes = [5 * MiB, 5 * MiB, 777];
    const whole = seededBytes('multipart', 0, sizes.reduce((sum, size) => sum + size, 0));
    const { UploadId } = await origin.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const parts: Array<{ PartNumber: number; ETag?: string }> = [];
    for (const [index, size] of sizes.entries()) {
      const start = sizes.slice(0, index).reduce((sum, each) => sum + each, 0);
      const uploaded = await origin.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: index + 1, Body: whole.subarray(start, start + size) }));
      parts.push({ PartNumber: index + 1, ETag: uploaded.ETag });
    }
    await origin.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
    const client = sdk(nodes[0] as Node);
    const second = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, PartNumber: 2 }));
    expect({ status: second.$metadata.httpStatusCode, range: second.ContentRange, length: second.ContentLength, parts: second.PartsCount }).toEqual({ status: 206, range: `bytes ${5 * MiB}-${10 * MiB - 1}/${whole.length}`, length: 5 * MiB, parts: 3 });
    expect(sha256(Buffer.from(await (second.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()))).toBe(sha256(whole.subarray(5 * MiB, 10 * MiB)));
    const last = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, PartNumber: 3 }));
    expect({ range: last.ContentRange, length: last.ContentLength, parts: last.PartsCount }).toEqual({ range: `bytes ${10 * MiB}-${whole.length - 1}/${whole.length}`, length: 777, parts: 3 });
    await expect(client.send(new GetObjectCommand({ Bucket: bucket, Key: key, PartNumber: 4 }))).rejects.toMatchObject({ name: 'InvalidPartNumber', $metadata: { httpStatusCode: 416 } });
    // An object uploaded whole is its own part 1.
    const single = await client.send(new GetObjectCommand({ Bucket: bucket, Key: SMALL_KEYS[0], PartNumber: 1 }));
    expect(sha256(Buffer.from(await (single.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()))).toBe(sha256(small[0] as Buffer));
  });

  it('pages a listing for aws-sdk-js and for boto3 (encoding-type=url), keys with spaces, + and &', async () => {
    const keys: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await sdk(nodes[1] as Node).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'models/llama/', MaxKeys: 5, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((object) => object.Key as string));
      token = page.NextContinuationToken;
      pages++;
    } while (token);
    const expected = [MODEL_KEY, ...SMALL_KEYS].sort();
    expect(keys).toEqual(expected);
    expect(pages).toBe(3);
    const listing = await boto3ListAll({ ...target(nodes[2] as Node), bucket, prefix: 'models/llama/', pageSize: 5 });
    expect(listing.keys).toEqual(expected);
    expect(listing.pages).toBe(3);
  });

  it('serves a presigned URL to a plain HTTP GET', async () => {
    const node = nodes[0] as Node;
    const url = new URL(`${node.s3}/${bucket}/${SMALL_KEYS[3]!.split('/').map(encodeURIComponent).join('/')}`);
    // As @aws-sdk/s3-request-presigner's getSignedUrl does: the payload is UNSIGNED-PAYLOAD, carried in the query.
    const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET }, sha256: new S3Client({ region: 'us-east-1' }).config.sha256, uriEscapePath: false });
    const presigned = await signer.presign({ method: 'GET', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, query: {}, headers: { host: url.host, 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' } }, { expiresIn: 300 });
    const query = new URLSearchParams(presigned.query as Record<string, string>).toString();
    const answer = await get(`${node.s3}${url.pathname}?${query}`);
    expect({ status: answer.status, body: answer.status === 200 ? '' : answer.body.toString() }).toEqual({ status: 200, body: '' });
    expect(sha256(answer.body)).toBe(sha256(small[3] as Buffer));
  });

  it("keeps an object's version for a download (one origin HEAD for boto3's ranged GETs), and serves the new version when a fill finds the object changed", async () => {
    // A server of its own, whose versions live 10 minutes, so that what it keeps does not depend on the machine's speed.
    const { cache, s3Port } = await startOwnServer('127.0.0.4', ['--s3-version-ttl', '600000']);
    try {
      const node: Node = { cache, s3: `http://127.0.0.4:${s3Port}` };
      const lookups = (answer: string) => cache.metric('granary_s3_gateway_version_lookups_total', `answer="${answer}"`);
      const download = await boto3DownloadFile({ ...target(node), bucket, key: MODEL_KEY, file: path.join(base, 'pinned-model.bin'), multipartChunkBytes: 8 * MiB });
      expect(download.sha256).toBe(sha256(model));
      expect(download.requests.filter((request) => request.range !== undefined)).toHaveLength(Math.ceil(MODEL_SIZE / (8 * MiB)));
      expect({ origin: await lookups('origin'), cache: await lookups('cache') }).toEqual({ origin: 1, cache: download.requests.length - 1 });

      // The version kept says v1; the origin has v2 by the time the first block is filled: the fill's If-Match fails,
      // and the gateway asks the origin again instead of answering with v1's headers.
      const key = 'models/llama/changing.bin';
      const [v1, v2] = [seededBytes('changing v1', 0, 3 * MiB), seededBytes('changing v2', 0, 5 * MiB + 7)];
      await putObjects(origin, bucket, [[key, v1]]);
      const kept = await sdk(node).send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(kept.ContentLength).toBe(v1.length);
      await putObjects(origin, bucket, [[key, v2]]);
      const got = await sdk(node).send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      expect({ length: got.ContentLength, same: sha256(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())) === sha256(v2) }).toEqual({ length: v2.length, same: true });
      expect(got.ETag).not.toBe(kept.ETag);
      expect(await lookups('origin')).toBe(3);
    } finally {
      await cache.stop();
    }
  });

  it('serves HTTPS with the certificate of --s3-tls-cert to aws-sdk-js and boto3 trusting it, and no plain HTTP on that port', async () => {
    const host = '127.0.0.5';
    const certificate = selfSignedCertificate(fs.mkdtempSync(path.join(base, 'tls-')), [host]);
    const { cache, s3Port } = await startOwnServer(host, ['--s3-tls-cert', certificate.certFile, '--s3-tls-key', certificate.keyFile]);
    try {
      const node: Node = { cache, s3: `https://${host}:${s3Port}` };
      const client = new S3Client({
        endpoint: node.s3, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1,
        credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET },
        requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: certificate.cert }) }),
      });
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: SMALL_KEYS[5] }));
      expect(sha256(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()))).toBe(sha256(small[5] as Buffer));
      const download = await boto3DownloadFile({ ...target(node), caFile: certificate.certFile, bucket, key: MODEL_KEY, file: path.join(base, 'tls-model.bin'), multipartChunkBytes: 8 * MiB });
      expect(download.sha256).toBe(sha256(model));
      // A client that does not trust the certificate is refused in the handshake, and plain HTTP gets no answer.
      await expect(new S3Client({ endpoint: node.s3, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET } }).send(new HeadObjectCommand({ Bucket: bucket, Key: MODEL_KEY }))).rejects.toThrow(/self[- ]signed/i);
      await expect(get(`http://${host}:${s3Port}/${bucket}/${MODEL_KEY}`)).rejects.toThrow();
    } finally {
      await cache.stop();
    }
  });

  it('refuses what a key may not read, a bad signature, anonymous requests and every write, in S3 XML', async () => {
    const node = nodes[1] as Node;
    await expect(sdk(node).send(new GetObjectCommand({ Bucket: bucket, Key: PRIVATE_KEY }))).rejects.toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    await expect(sdk(node, 'a-wrong-secret-of-enough-length').send(new GetObjectCommand({ Bucket: bucket, Key: MODEL_KEY }))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
    await expect(sdk(node).send(new PutObjectCommand({ Bucket: bucket, Key: 'models/llama/new.bin', Body: 'x' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: expect.any(Number) } });
    await expect(origin.send(new HeadObjectCommand({ Bucket: bucket, Key: 'models/llama/new.bin' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    const anonymous = await get(`${node.s3}/${bucket}/${MODEL_KEY}`);
    expect(anonymous.status).toBe(403);
    expect(anonymous.body.toString()).toMatch(/<Code>AccessDenied<\/Code>/);
    expect(anonymous.body.includes(model.subarray(0, 64))).toBe(false);
  });
});

/** A plain GET, without any signature of its own. */
function get(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      })
      .on('error', reject);
  });
}

