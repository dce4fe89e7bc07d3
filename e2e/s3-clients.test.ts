// The real S3 clients of e2e/support/s3-clients.ts (pinned boto3, Debian's rclone) against the real S3 server:
// what they return is what the store holds, they read as their users' code would (boto3's download in ranged GETs,
// seen on the wire by a relay; its paginator page by page), and they fail loudly, with the client's own words.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { boto3DownloadFile, boto3Head, boto3ListAll, rcloneCopy, s3Target, type S3Target } from './support/s3-clients';
import { RequestHeads } from './support/request-heads';
import { selfSignedCertificate } from './support/self-signed';
import { createBucket, s3Client, startS3Server, type S3Server } from './support/s3-server';
import { startCountingRelay, type CountingRelay } from './support/tcp-relay';
import versions from './tools/versions.json';
import { makeTemp, MiB, putObjects, removeTemp, seededBytes, sha256 } from './scenarios/helpers';

jest.setTimeout(120_000);

/** Big enough for several ranged GETs at CHUNK; not a multiple of it, so the last range is short. */
const LARGE_SIZE = 20 * MiB + 12_345;
/** boto3's multipart threshold and chunk size in the download: 6 ranged GETs of the large object. */
const CHUNK = 4 * MiB;
const PREFIX = 'data/';
/** Not a divisor of the prefix's 31 keys: the last page is short. */
const PAGE_SIZE = 7;

/** The prefix's keys: spaces, Latin, Cyrillic and CJK letters, characters URL encoding must get right, sub-folders. */
const prefixKeys = [
  ...Array.from({ length: 30 }, (_, i) => {
    const name = ['shard %s.bin', 'sub dir/naïve %s.txt', '日本語/файл %s.bin'][i % 3] as string;
    return `${PREFIX}${name.replace('%s', String(i).padStart(2, '0'))}`;
  }),
  `${PREFIX}odd+chars&=%.bin`,
];
/** Around the prefix, never listed or copied with it. */
const otherKeys = ['data-sibling.txt', 'other/x.txt', 'big/model.bin'];
const LARGE_KEY = 'big/model.bin';

/** The bytes of each object: seeded by its key, sizes from 1 KiB up (the large one LARGE_SIZE). */
const contentOf = (key: string, index: number) => seededBytes(key, 0, key === LARGE_KEY ? LARGE_SIZE : 1024 + index * 517);
/** The ETag S3 gives an object stored with one PUT: its MD5, quoted. */
const putETag = (content: Buffer) => `"${createHash('md5').update(content).digest('hex')}"`;
/** S3's order: UTF-8 bytes. */
const s3Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

let server: S3Server | undefined;
let client: S3Client | undefined;
let relay: CountingRelay | undefined;
let temp: string | undefined;
let bucket: string;
let target: S3Target;
const objects = new Map<string, Buffer>();
/** Each request head that went through the relay, as text: only the download test's client goes through it. */
const heads: string[] = [];

beforeAll(async () => {
  server = await startS3Server();
  client = s3Client(server);
  target = s3Target(server);
  bucket = await createBucket(server, 'clients');
  [...prefixKeys, ...otherKeys].forEach((key, index) => objects.set(key, contentOf(key, index)));
  await putObjects(client, bucket, [...objects]);
  const { hostname, port } = new URL(server.endpoint);
  relay = await startCountingRelay({ host: hostname, port: Number(port) }, {}, () => new RequestHeads((head) => {
    heads.push(head.toString('latin1'));
    return head;
  }));
  temp = makeTemp('s3-clients');
});

afterAll(async () => {
  await relay?.close();
  client?.destroy();
  await server?.stop();
  removeTemp(temp);
});

describe('boto3', () => {
  it('downloads a large object in ranged GETs, the file matching the store, and says which requests it sent', async () => {
    const file = path.join(temp as string, 'model.bin');
    const download = await boto3DownloadFile({ ...target, endpoint: (relay as CountingRelay).endpoint, bucket, key: LARGE_KEY, file, multipartChunkBytes: CHUNK, concurrency: 4 });

    expect(download.versions.boto3).toBe(versions.boto3.version);
    expect(download.bytes).toBe(LARGE_SIZE);
    expect(download.sha256).toBe(sha256(objects.get(LARGE_KEY) as Buffer));

    // What went over the wire: one HEAD, then every GET ranged, the ranges starting at each chunk and covering the object.
    const requestLines = heads.map((head) => head.slice(0, head.indexOf('\r\n')));
    expect(requestLines.filter((line) => line.startsWith('HEAD '))).toHaveLength(1);
    const gets = heads.filter((head) => head.startsWith('GET '));
    const ranges = gets.map((head) => /^range:[ \t]*bytes=(\d+)-(\d*)\r$/im.exec(head)).map((match) => {
      if (!match) throw new Error('boto3 sent a GET without a Range header');
      return { first: Number(match[1]), last: match[2] ? Number(match[2]) : LARGE_SIZE - 1 };
    }).sort((a, b) => a.first - b.first);
    const parts = Math.ceil(LARGE_SIZE / CHUNK);
    expect(parts).toBeGreaterThan(1);
    expect(ranges).toEqual(Array.from({ length: parts }, (_, i) => ({ first: i * CHUNK, last: Math.min((i + 1) * CHUNK, LARGE_SIZE) - 1 })));

    // What boto3 says it sent is what the relay saw.
    const reported = download.requests.filter((request) => request.operation === 'GetObject').map((request) => request.range).sort();
    const onWire = gets.map((head) => /^range:[ \t]*([^\r]*)\r$/im.exec(head)?.[1]).sort();
    expect(reported).toEqual(onWire);
    expect(download.requests.map((request) => request.operation)).toEqual(['HeadObject', ...Array<string>(parts).fill('GetObject')]);
    // s3transfer pins every part to the version its HEAD saw: a server must honour If-Match on ranged GETs.
    for (const request of download.requests.slice(1)) expect(request.ifMatch).toBe(putETag(objects.get(LARGE_KEY) as Buffer));
  });

  it(`lists every key under a prefix over several pages of ${PAGE_SIZE}, in S3's order`, async () => {
    const listing = await boto3ListAll({ ...target, bucket, prefix: PREFIX, pageSize: PAGE_SIZE });

    expect(listing.keys).toEqual([...prefixKeys].sort(s3Order));
    expect(listing.pages).toBe(Math.ceil(prefixKeys.length / PAGE_SIZE));
    expect(listing.requests).toHaveLength(listing.pages);
    for (const request of listing.requests) expect(new URL(request.url).searchParams.get('max-keys')).toBe(String(PAGE_SIZE));
  });

  it('lists one level with a delimiter: the files there and the sub-folders as common prefixes', async () => {
    const listing = await boto3ListAll({ ...target, bucket, prefix: PREFIX, pageSize: PAGE_SIZE, delimiter: '/' });

    expect(listing.keys).toEqual(prefixKeys.filter((key) => !key.slice(PREFIX.length).includes('/')).sort(s3Order));
    expect(listing.commonPrefixes).toEqual([`${PREFIX}sub dir/`, `${PREFIX}日本語/`]);
  });

  it('heads an object whose key needs encoding: its size and ETag (the MD5 of a single PUT)', async () => {
    const key = prefixKeys.find((name) => name.includes('файл')) as string;
    const head = await boto3Head({ ...target, bucket, key });

    expect(head.contentLength).toBe((objects.get(key) as Buffer).length);
    expect(head.eTag).toBe(putETag(objects.get(key) as Buffer));
    expect(Number.isNaN(Date.parse(head.lastModified))).toBe(false);
  });

  it('fails with the client\'s error when the secret is wrong', async () => {
    const wrong = { ...target, credentials: { ...target.credentials, secretAccessKey: 'not-the-secret' } };
    await expect(boto3Head({ ...wrong, bucket, key: LARGE_KEY })).rejects.toThrow(/boto3 head failed .*ClientError.*403/s);
  });

  it('is killed at its timeout when the endpoint never answers', async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as net.AddressInfo;
      const started = Date.now();
      await expect(boto3Head({ ...target, endpoint: `http://127.0.0.1:${port}`, timeoutMs: 3000, bucket, key: LARGE_KEY })).rejects.toThrow(/killed after its timeout of 3000 ms/);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      silent.close();
    }
  });
});

describe('rclone', () => {
  it('copies a prefix, every file matching the store, nothing from beside it', async () => {
    const destinationDir = path.join(temp as string, 'rclone');
    const copy = await rcloneCopy({ ...target, source: `${bucket}/${PREFIX.slice(0, -1)}`, destinationDir });

    const expected = prefixKeys.map((key) => ({ path: key.slice(PREFIX.length), bytes: (objects.get(key) as Buffer).length, sha256: sha256(objects.get(key) as Buffer) }));
    expect(copy.files).toEqual(expected.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)));
  });

  it('fails with the client\'s error when the secret is wrong', async () => {
    const wrong = { ...target, credentials: { ...target.credentials, secretAccessKey: 'not-the-secret' } };
    const destinationDir = path.join(temp as string, 'rclone-refused');
    await expect(rcloneCopy({ ...wrong, source: `${bucket}/data`, destinationDir })).rejects.toThrow(/rclone copy of .* failed .*SignatureDoesNotMatch/s);
    expect(fs.existsSync(destinationDir) ? fs.readdirSync(destinationDir) : []).toEqual([]);
  });
});

describe('over https', () => {
  it('both clients trust the endpoint through caFile, and refuse it without', async () => {
    const dir = makeTemp('s3-clients-tls');
    const tlsServer = await startS3Server({ tls: selfSignedCertificate(dir) });
    const tlsClient = s3Client(tlsServer);
    try {
      const tlsTarget = s3Target(tlsServer);
      expect(tlsTarget.caFile).toBe(tlsServer.tls?.certFile);
      const tlsBucket = await createBucket(tlsServer, 'clients-tls');
      const content = seededBytes('tls', 0, 3 * MiB + 1);
      await putObjects(tlsClient, tlsBucket, [['tls/a b.bin', content]]);

      const download = await boto3DownloadFile({ ...tlsTarget, bucket: tlsBucket, key: 'tls/a b.bin', file: path.join(dir, 'a b.bin'), multipartChunkBytes: MiB });
      expect(download.sha256).toBe(sha256(content));
      expect(download.requests.filter((request) => request.range)).toHaveLength(4);
      const copy = await rcloneCopy({ ...tlsTarget, source: `${tlsBucket}/tls`, destinationDir: path.join(dir, 'rclone') });
      expect(copy.files).toEqual([{ path: 'a b.bin', bytes: content.length, sha256: sha256(content) }]);

      const untrusted = { ...tlsTarget, caFile: undefined };
      await expect(boto3Head({ ...untrusted, bucket: tlsBucket, key: 'tls/a b.bin' })).rejects.toThrow(/CERTIFICATE_VERIFY_FAILED/);
      await expect(rcloneCopy({ ...untrusted, source: `${tlsBucket}/tls`, destinationDir: path.join(dir, 'refused') })).rejects.toThrow(/certificate signed by unknown authority/);
    } finally {
      tlsClient.destroy();
      await tlsServer.stop();
      removeTemp(dir);
    }
  });
});
