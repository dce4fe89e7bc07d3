import { decodeXmlText, listQuery, parseListPage } from './list-xml';

describe('listQuery', () => {
  it('sorts and SigV4-encodes the parameters of a page', () => {
    expect(listQuery({ prefix: 'data/a b+c/', delimiter: '/', continuationToken: 'tok/en==', maxKeys: 100 }))
      .toBe('continuation-token=tok%2Fen%3D%3D&delimiter=%2F&list-type=2&max-keys=100&prefix=data%2Fa%20b%2Bc%2F');
    expect(listQuery({ prefix: '' })).toBe('list-type=2&max-keys=1000&prefix=');
  });
});

describe('parseListPage', () => {
  const page = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><Prefix>vol/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>
  <Contents><Key>vol/a&amp;b &lt;1&gt;.bin</Key><LastModified>2026-12-06T07:30:05.000Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>65536</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>vol/caf&#233;&#x2603;.txt</Key><LastModified>2026-12-06T07:30:06.000Z</LastModified><ETag>"d41d8cd98f00b204e9800998ecf8427e-2"</ETag><Size>0</Size><Owner><ID>x</ID></Owner></Contents>
  <CommonPrefixes><Prefix>vol/d000/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>vol/d&amp;1/</Prefix></CommonPrefixes>
  <NextContinuationToken>next+token/=</NextContinuationToken></ListBucketResult>`;

  it('reads objects, folders and the next token, with references resolved', () => {
    expect(parseListPage(page)).toEqual({
      objects: [
        { key: 'vol/a&b <1>.bin', size: 65536, etag: '9b2cf535f27731c974343645a3985328', lastModified: new Date('2026-12-06T07:30:05.000Z') },
        { key: 'vol/café☃.txt', size: 0, etag: 'd41d8cd98f00b204e9800998ecf8427e-2', lastModified: new Date('2026-12-06T07:30:06.000Z') },
      ],
      commonPrefixes: ['vol/d000/', 'vol/d&1/'],
      nextToken: 'next+token/=',
    });
  });

  it('has no next token on the last page, and reads an empty listing', () => {
    expect(parseListPage(page.replace('<IsTruncated>true', '<IsTruncated>false')).nextToken).toBeUndefined();
    expect(parseListPage('<ListBucketResult><Name>bkt</Name><Prefix>none/</Prefix><IsTruncated>false</IsTruncated></ListBucketResult>')).toEqual({ objects: [], commonPrefixes: [] });
  });

  it('refuses what is not a listing or is cut short', () => {
    expect(() => parseListPage('<Error><Code>AccessDenied</Code></Error>')).toThrow(/not a ListBucketResult/);
    expect(() => parseListPage('<ListBucketResult><Contents><Key>a</Key>')).toThrow(/does not end/);
    expect(() => parseListPage('<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>')).toThrow(/without a <Key>/);
  });

  it('leaves unknown entities as they are', () => {
    expect(decodeXmlText('a &nbsp; &amp; b')).toBe('a &nbsp; & b');
  });
});
