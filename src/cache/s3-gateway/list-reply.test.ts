import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetBucketLocationCommand, ListObjectsCommand, type ListObjectsCommandOutput, ListObjectsV2Command, paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import { compareKeys } from '../../objectstore/listing';
import { MemoryStore } from '../../objectstore/memory';
import type { ListPage } from '../../objectstore/store';
import { errorReply, S3Error } from './error-reply';
import { bucketLocationXml, lastKeyUnder, listObjectsV1Xml, listObjectsV2Xml, originListOptionsForV1 } from './list-reply';
import { parseS3Request, type ListObjectsRequest, type ListObjectsV2Request } from './s3-request';

const XML = '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">';
const AT = new Date('2026-12-06T10:00:00Z');
const V2: ListObjectsV2Request = { kind: 'ListObjectsV2', bucket: 'models', prefix: '', maxKeys: 1000, fetchOwner: false };
const V1: ListObjectsRequest = { kind: 'ListObjects', bucket: 'models', prefix: '', maxKeys: 1000 };

/** Keys that test the encoding: spaces, '+', XML's specials, unicode beyond the BMP, parentheses, '%', controls. */
const ODD_KEYS = ['a b/1.bin', 'a b/2.bin', 'a+b', 'a&b<c>"\'', 'é/ü 1', '😀.txt', 'x(3)*!~.png', 'z/€ 100%', 'ctl\u0001\r\t\nkey'];

describe('listObjectsV2Xml', () => {
  const page: ListPage = {
    objects: [{ key: 'a&b <c>.bin', size: 12, etag: 'd41d8cd98f00b204e9800998ecf8427e', lastModified: AT }],
    commonPrefixes: ['dir/'],
    nextToken: 'dir/',
  };

  it('writes S3\'s ListBucketResult with every field asked for, escaped', () => {
    const request = { ...V2, prefix: 'p', delimiter: '/', maxKeys: 2, continuationToken: 'a&b', startAfter: 'a<' };
    expect(listObjectsV2Xml(request, page)).toBe(
      `${XML}<Name>models</Name><Prefix>p</Prefix><ContinuationToken>a&amp;b</ContinuationToken><NextContinuationToken>dir/</NextContinuationToken>` +
        '<StartAfter>a&lt;</StartAfter><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>' +
        '<Contents><Key>a&amp;b &lt;c&gt;.bin</Key><LastModified>2026-12-06T10:00:00.000Z</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag>' +
        '<Size>12</Size><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes></ListBucketResult>',
    );
  });

  it('leaves out what was not asked for, and NextContinuationToken on the last page', () => {
    expect(listObjectsV2Xml(V2, { objects: [], commonPrefixes: [] })).toBe(`${XML}<Name>models</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`);
  });

  it('URL-encodes keys, prefixes, start-after and delimiter with encoding-type=url, never the tokens', () => {
    const request: ListObjectsV2Request = { ...V2, prefix: 'a b+', delimiter: ' ', startAfter: 'a b+(1)', continuationToken: 'a b+/=', encodingType: 'url' };
    const xml = listObjectsV2Xml(request, { objects: [{ key: 'a b+/é&<😀(1)~*', size: 1, etag: 'e', lastModified: AT }], commonPrefixes: ['a b+c '], nextToken: 'n+/ =' });
    expect(xml).toContain('<Prefix>a%20b%2B</Prefix><ContinuationToken>a b+/=</ContinuationToken><NextContinuationToken>n+/ =</NextContinuationToken><StartAfter>a%20b%2B%281%29</StartAfter>');
    expect(xml).toContain('<Delimiter>%20</Delimiter><EncodingType>url</EncodingType>');
    expect(xml).toContain('<Key>a%20b%2B/%C3%A9%26%3C%F0%9F%98%80%281%29~%2A</Key>');
    expect(xml).toContain('<CommonPrefixes><Prefix>a%20b%2Bc%20</Prefix></CommonPrefixes>');
  });

  it('writes characters XML cannot hold as text as character references, as S3 does', () => {
    const xml = listObjectsV2Xml(V2, { objects: [{ key: 'a\u0001b\rc\td\ne\uFFFF', size: 1, etag: 'e', lastModified: AT }], commonPrefixes: [] });
    expect(xml).toContain('<Key>a&#x1;b&#xD;c\td\ne&#xFFFF;</Key>');
  });
});

describe('listObjectsV1Xml', () => {
  it('writes Marker always and NextMarker, the last entry, when truncated', () => {
    const page: ListPage = { objects: [{ key: 'a0', size: 3, etag: 'e', lastModified: AT }], commonPrefixes: ['a/'], nextToken: 'a0' };
    expect(listObjectsV1Xml({ ...V1, delimiter: '/', maxKeys: 2 }, page)).toBe(
      `${XML}<Name>models</Name><Prefix></Prefix><Marker></Marker><NextMarker>a0</NextMarker><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>` +
        '<Contents><Key>a0</Key><LastModified>2026-12-06T10:00:00.000Z</LastModified><ETag>&quot;e&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>' +
        '<CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes></ListBucketResult>',
    );
    expect(listObjectsV1Xml({ ...V1, delimiter: '/', marker: 'a' }, { objects: [], commonPrefixes: ['a/', 'b/'], nextToken: 'b/' })).toContain('<Marker>a</Marker><NextMarker>b/</NextMarker>');
    expect(listObjectsV1Xml({ ...V1, marker: 'a/' }, { objects: [{ key: 'b', size: 0, etag: 'e', lastModified: AT }], commonPrefixes: [] })).toContain(
      '<Marker>a/</Marker><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>',
    );
  });

  it('URL-encodes Prefix, Marker, NextMarker, Delimiter and keys with encoding-type=url', () => {
    const xml = listObjectsV1Xml({ ...V1, prefix: 'a b/', marker: 'a b/+', delimiter: '/', encodingType: 'url' }, { objects: [], commonPrefixes: ['a b/c d/'], nextToken: 'x' });
    expect(xml).toContain('<Prefix>a%20b/</Prefix><Marker>a%20b/%2B</Marker><NextMarker>a%20b/c%20d/</NextMarker><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><EncodingType>url</EncodingType>');
  });

  it('refuses a truncated page without an entry: there is no marker to go on from', () => {
    expect(() => listObjectsV1Xml(V1, { objects: [], commonPrefixes: [], nextToken: 't' })).toThrow(expect.objectContaining({ code: 'InternalError' }));
  });
});

describe('bucketLocationXml', () => {
  it('writes the region, and an empty LocationConstraint for us-east-1', () => {
    const open = '<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';
    expect(bucketLocationXml('eu-west-3')).toBe(`${open}>eu-west-3</LocationConstraint>`);
    expect(bucketLocationXml('us-east-1')).toBe(`${open}/>`);
  });
});

describe('version 1 pagination over the origin\'s start-after', () => {
  /** The entries of a v1 listing of `store` one page of `maxKeys` at a time, following NextMarker, at most `pages` pages. */
  async function listV1(store: MemoryStore, request: ListObjectsRequest, pages: number, options = originListOptionsForV1): Promise<string[][]> {
    const seen: string[][] = [];
    let marker: string | undefined;
    for (let count = 0; count < pages; count += 1) {
      const asked = { ...request, ...(marker !== undefined && { marker }) };
      const page = await store.list(options(asked));
      seen.push([...page.objects.map((object) => object.key), ...page.commonPrefixes].sort(compareKeys));
      marker = /<NextMarker>(.*?)<\/NextMarker>/.exec(listObjectsV1Xml(asked, page))?.[1];
      if (marker === undefined) return seen;
    }
    return seen;
  }

  const store = new MemoryStore();
  beforeAll(async () => {
    for (const key of ['a/1', 'a/2', 'a0', 'b']) await store.put(key, Buffer.from(key));
  });

  it('goes past a common prefix that ends a page, listing each entry once', async () => {
    expect(await listV1(store, { ...V1, delimiter: '/', maxKeys: 1 }, 10)).toEqual([['a/'], ['a0'], ['b']]);
    expect(await listV1(store, { ...V1, maxKeys: 1 }, 10)).toEqual([['a/1'], ['a/2'], ['a0'], ['b']]);
    expect(await listV1(store, { ...V1, delimiter: '/', maxKeys: 2 }, 10)).toEqual([['a/', 'a0'], ['b']]);
    expect(await listV1(store, { ...V1, prefix: 'a', delimiter: '/', maxKeys: 1 }, 10)).toEqual([['a/'], ['a0']]);
  });

  it('would list the common prefix forever with the marker itself as the start-after', async () => {
    const naive = (request: ListObjectsRequest) => ({ prefix: request.prefix, delimiter: '/', maxKeys: 1, ...(request.marker !== undefined && { startAfter: request.marker }) });
    expect(await listV1(store, { ...V1, delimiter: '/', maxKeys: 1 }, 4, naive)).toEqual([['a/'], ['a/'], ['a/'], ['a/']]);
  });

  it('goes past keys under the common prefix that continue with U+10FFFF, and up to the longest key', async () => {
    const deep = new MemoryStore();
    const longest = `a/${'\u{10FFFF}'.repeat(255)}x`;
    for (const key of ['a/\u{10FFFF}', 'a/\u{10FFFF}\u{10FFFF}z', longest, 'a0']) await deep.put(key, Buffer.from('x'));
    expect(Buffer.byteLength(longest)).toBe(1023);
    expect(await listV1(deep, { ...V1, delimiter: '/', maxKeys: 1 }, 10)).toEqual([['a/'], ['a0']]);
  });

  it('starts after the greatest key under a common prefix: no longer than S3 allows, after every key under it', () => {
    for (const prefix of ['', 'a/', 'ab/', 'abc/', 'é/']) {
      const last = lastKeyUnder(prefix);
      expect(Buffer.byteLength(last)).toBe(1024);
      expect(last.startsWith(prefix)).toBe(true);
      const allButLast = [...last].slice(0, -1).join('');
      for (const key of [`${prefix}\u{10FFFF}\u{10FFFF}`, `${prefix}\u{10FFFF}\uFFFF`, `${allButLast}a`, `${prefix}zzz`]) expect(compareKeys(key, last)).toBeLessThan(0);
    }
    expect(compareKeys(lastKeyUnder('a/'), 'a0')).toBeLessThan(0);
    expect(lastKeyUnder('k'.repeat(1024))).toBe('k'.repeat(1024));
    expect(originListOptionsForV1({ ...V1, prefix: 'p/', delimiter: '/', marker: 'p/a/', maxKeys: 7 })).toEqual({ prefix: 'p/', delimiter: '/', startAfter: lastKeyUnder('p/a/'), maxKeys: 7 });
    expect(originListOptionsForV1({ ...V1, prefix: 'p/', delimiter: '/', marker: 'p/a' })).toEqual({ prefix: 'p/', delimiter: '/', startAfter: 'p/a', maxKeys: 1000 });
    expect(originListOptionsForV1({ ...V1, marker: 'a/' })).toEqual({ prefix: '', startAfter: 'a/', maxKeys: 1000 });
  });
});

describe('the AWS SDK reads the listings', () => {
  const REGION = 'eu-west-3';
  const store = new MemoryStore();
  let server: http.Server;
  let client: S3Client;
  /** The request targets the gateway received, as sent. */
  const received: string[] = [];

  /** A gateway of this file's two modules over `store`: enough to answer the SDK's listings. */
  async function answer(request: http.IncomingMessage): Promise<{ status: number; body: string }> {
    const target = request.url ?? '/';
    received.push(target);
    const question = target.indexOf('?');
    const incoming = { method: request.method ?? 'GET', path: question < 0 ? target : target.slice(0, question), query: question < 0 ? '' : target.slice(question + 1), headers: request.headers as Record<string, string> };
    try {
      const parsed = parseS3Request(incoming);
      switch (parsed.kind) {
        case 'ListObjectsV2': {
          const { prefix, delimiter, continuationToken, startAfter, maxKeys } = parsed;
          return { status: 200, body: listObjectsV2Xml(parsed, await store.list({ prefix, delimiter, continuationToken, startAfter, maxKeys })) };
        }
        case 'ListObjects':
          return { status: 200, body: listObjectsV1Xml(parsed, await store.list(originListOptionsForV1(parsed))) };
        case 'GetBucketLocation':
          return { status: 200, body: bucketLocationXml(parsed.bucket === 'old' ? 'us-east-1' : REGION) };
        default:
          throw new S3Error('NotImplemented', parsed.kind);
      }
    } catch (error) {
      const reply = errorReply(error instanceof S3Error ? error : new S3Error('InternalError', String(error)), { method: incoming.method, resource: incoming.path, requestId: 'r' });
      return { status: reply.status, body: reply.body };
    }
  }

  beforeAll(async () => {
    for (const key of ODD_KEYS) await store.put(key, Buffer.from(key));
    server = http.createServer((request, response) => {
      request.resume();
      void answer(request).then(({ status, body }) => {
        response.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': 'r' });
        response.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = new S3Client({
      region: REGION,
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-secret-secret' },
    });
  });

  afterAll(async () => {
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    received.length = 0;
  });

  const sortedKeys = [...ODD_KEYS].sort(compareKeys);

  it('pages through ListObjectsV2 with the paginator, every key and field exact', async () => {
    const pages = [];
    for await (const page of paginateListObjectsV2({ client, pageSize: 4 }, { Bucket: 'models' })) pages.push(page);
    expect(pages.map((page) => [page.KeyCount, page.IsTruncated, page.MaxKeys])).toEqual([[4, true, 4], [4, true, 4], [1, false, 4]]);
    expect(pages[1]?.ContinuationToken).toBe(pages[0]?.NextContinuationToken);
    expect(pages[2]?.NextContinuationToken).toBeUndefined();
    expect(pages.flatMap((page) => (page.Contents ?? []).map((object) => object.Key))).toEqual(sortedKeys);
    const listed = (await store.list({ prefix: '' })).objects.find((object) => object.key === 'a+b');
    expect(pages[0]?.Contents?.find((object) => object.Key === 'a+b')).toEqual({ Key: 'a+b', LastModified: listed?.lastModified, ETag: `"${listed?.etag}"`, Size: 3, StorageClass: 'STANDARD' });
    expect(pages[0]?.Name).toBe('models');
  });

  it('reads every key back exactly with EncodingType url, by decodeURIComponent and by a decoder that reads + as a space', async () => {
    const output = await client.send(new ListObjectsV2Command({ Bucket: 'models', EncodingType: 'url', StartAfter: 'a b/1.bin' }));
    expect(output.EncodingType).toBe('url');
    expect(output.StartAfter).toBe('a%20b/1.bin');
    const raw = (output.Contents ?? []).map((object) => object.Key ?? '');
    expect(raw.every((key) => /^[A-Za-z0-9\-._~%/]+$/.test(key))).toBe(true);
    const unquotePlus = (text: string) => decodeURIComponent(text.replace(/\+/g, ' '));
    expect(raw.map((key) => decodeURIComponent(key))).toEqual(sortedKeys.slice(1));
    expect(raw.map(unquotePlus)).toEqual(sortedKeys.slice(1));
  });

  it('rolls up common prefixes with a delimiter, encoded or not', async () => {
    const plain = await client.send(new ListObjectsV2Command({ Bucket: 'models', Delimiter: '/', Prefix: '' }));
    expect(plain.CommonPrefixes).toEqual([{ Prefix: 'a b/' }, { Prefix: 'z/' }, { Prefix: 'é/' }]);
    expect(plain.Delimiter).toBe('/');
    const encoded = await client.send(new ListObjectsV2Command({ Bucket: 'models', Delimiter: '/', Prefix: 'a b/', EncodingType: 'url' }));
    expect(encoded.Prefix).toBe('a%20b/');
    expect(encoded.Contents?.map((object) => object.Key)).toEqual(['a%20b/1.bin', 'a%20b/2.bin']);
  });

  it('pages through ListObjects (version 1) by NextMarker, each entry once, encoded or not', async () => {
    for (const EncodingType of [undefined, 'url'] as const) {
      const entries: string[] = [];
      let Marker: string | undefined;
      let page: ListObjectsCommandOutput;
      do {
        page = await client.send(new ListObjectsCommand({ Bucket: 'models', Delimiter: '/', MaxKeys: 1, Marker, EncodingType }));
        const decode = (text: string | undefined) => (EncodingType === 'url' ? decodeURIComponent(text ?? '') : (text ?? ''));
        expect(decode(page.Marker)).toBe(Marker ?? '');
        entries.push(...(page.Contents ?? []).map((object) => decode(object.Key)), ...(page.CommonPrefixes ?? []).map((prefix) => decode(prefix.Prefix)));
        // As rclone does: the marker decoded before it is sent back.
        Marker = page.IsTruncated ? decode(page.NextMarker) : undefined;
      } while (page.IsTruncated && entries.length < 20);
      expect(entries).toEqual(['a b/', 'a&b<c>"\'', 'a+b', 'ctl\u0001\r\t\nkey', 'x(3)*!~.png', 'z/', 'é/', '😀.txt']);
    }
    expect(received.some((target) => target.includes('marker=a%20b%2F'))).toBe(true);
  });

  it('reads the bucket\'s region, and us-east-1 from an empty LocationConstraint', async () => {
    expect((await client.send(new GetBucketLocationCommand({ Bucket: 'models' }))).LocationConstraint).toBe(REGION);
    expect((await client.send(new GetBucketLocationCommand({ Bucket: 'old' }))).LocationConstraint).toBeUndefined();
  });
});
