import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { createBucket, s3Client, testS3 } from '../../e2e/support/s3-server';
import { isObjectStoreError, type ObjectStoreErrorCode } from './errors';
import { LocalDirStore, STATE_DIR, UPLOAD_KEY_FILE } from './local-dir';
import { MemoryStore } from './memory';
import { S3Store } from './s3';
import { MIN_PART_SIZE, type ListOptions, type ObjectStore } from './store';

/** A store under test, with what the contract needs to see beyond the interface. */
interface Subject {
  store: ObjectStore;
  /** Keys of multipart uploads still pending under `prefix`. */
  pendingUploads(prefix: string): Promise<string[]>;
  cleanup(): Promise<void>;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function expectCode(promise: Promise<unknown>, code: ObjectStoreErrorCode): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!isObjectStoreError(error, code)) throw new Error(`expected ObjectStoreError ${code}, got ${String(error)}`);
}

/** All pages of a listing, with the page sizes seen. */
async function listAll(store: ObjectStore, options: ListOptions): Promise<{ keys: string[]; prefixes: string[]; pages: number[] }> {
  const result = { keys: [] as string[], prefixes: [] as string[], pages: [] as number[] };
  let token: string | undefined;
  do {
    const page = await store.list({ ...options, ...(token !== undefined && { continuationToken: token }) });
    result.keys.push(...page.objects.map((o) => o.key));
    result.prefixes.push(...page.commonPrefixes);
    result.pages.push(page.objects.length + page.commonPrefixes.length);
    token = page.nextToken;
  } while (token !== undefined && result.pages.length < 100);
  return result;
}

/** Bytes that differ from one offset to the next, so a misplaced range shows. */
function pattern(size: number, seed: number): Buffer {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + seed) & 0xff;
  return data;
}

/**
 * The ObjectStore contract, run against every implementation. A local folder lists every folder as its marker
 * `dir/` (S3 lists a marker only when one was put), so listings below ignore the key equal to the prefix.
 */
export function objectStoreContract(name: string, factory: () => Promise<Subject>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let subject: Subject;
    let store: ObjectStore;
    beforeAll(async () => {
      subject = await factory();
      store = subject.store;
    });
    afterAll(async () => {
      store?.close();
      await subject?.cleanup();
    });

    it('checks the bucket', async () => {
      await expect(store.checkBucket()).resolves.toBeUndefined();
    });

    it('heads a missing key as NotFound, naming the key', async () => {
      await expectCode(store.head('missing/nothing.txt'), 'NotFound');
      await expect(store.head('missing/nothing.txt')).rejects.toThrow(/missing\/nothing\.txt/);
      await expectCode(store.get('missing/nothing.txt'), 'NotFound');
    });

    it('puts and gets whole objects and ranges', async () => {
      const data = pattern(1000, 1);
      const put = await store.put('rw/data.bin', data);
      expect(put).toMatchObject({ key: 'rw/data.bin', size: 1000 });
      expect(put.etag).not.toMatch(/"/);
      const head = await store.head('rw/data.bin');
      expect(head).toMatchObject({ key: 'rw/data.bin', size: 1000, etag: put.etag });
      expect(head.lastModified).toBeInstanceOf(Date);

      const whole = await store.get('rw/data.bin');
      expect(whole).toMatchObject({ size: 1000, etag: put.etag, range: { start: 0, end: 1000 } });
      expect((await readAll(whole.body)).equals(data)).toBe(true);

      const ranged = await store.get('rw/data.bin', { range: { start: 100, end: 300 } });
      expect(ranged).toMatchObject({ size: 1000, range: { start: 100, end: 300 } });
      expect((await readAll(ranged.body)).equals(data.subarray(100, 300))).toBe(true);

      const tail = await store.get('rw/data.bin', { range: { start: 900, end: 5000 } });
      expect(tail.range).toEqual({ start: 900, end: 1000 });
      expect((await readAll(tail.body)).equals(data.subarray(900))).toBe(true);

      await expectCode(store.get('rw/data.bin', { range: { start: 1000, end: 1001 } }), 'InvalidArgument');
      await expectCode(store.get('rw/data.bin', { range: { start: 5, end: 5 } }), 'InvalidArgument');
    });

    it('reads a range into a buffer: exactly the range, from the version asked for, never part of it', async () => {
      const data = pattern(1000, 3);
      const put = await store.put('into/data.bin', data);
      const into = Buffer.alloc(200);
      expect(await store.getInto('into/data.bin', into, { range: { start: 100, end: 300 }, ifMatch: put.etag })).toMatchObject({ size: 1000, etag: put.etag, range: { start: 100, end: 300 } });
      expect(into.equals(data.subarray(100, 300))).toBe(true);
      await expectCode(store.getInto('into/data.bin', Buffer.alloc(10), { range: { start: 0, end: 10 }, ifMatch: 'not-the-etag' }), 'PreconditionFailed');
      await expectCode(store.getInto('into/none.bin', Buffer.alloc(10), { range: { start: 0, end: 10 } }), 'NotFound');
      await expectCode(store.getInto('into/data.bin', Buffer.alloc(10), { range: { start: 0, end: 20 } }), 'InvalidArgument');
      await expectCode(store.getInto('into/data.bin', Buffer.alloc(10), { range: { start: 1000, end: 1010 } }), 'InvalidArgument');
      // Past the end: S3 sends the 50 bytes there are, which is not the range asked for (InvalidArgument or Internal by store).
      await expect(store.getInto('into/data.bin', Buffer.alloc(100), { range: { start: 950, end: 1050 } })).rejects.toMatchObject({ name: 'ObjectStoreError' });
    });

    it('puts an empty object and a Readable of unknown length larger than a part', async () => {
      await store.put('rw/empty', Buffer.alloc(0));
      expect((await store.head('rw/empty')).size).toBe(0);
      expect((await readAll((await store.get('rw/empty')).body)).length).toBe(0);

      const data = pattern(2 * MIN_PART_SIZE + 12345, 2);
      const chunks = Array.from({ length: Math.ceil(data.length / 65536) }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
      const info = await store.put('rw/streamed.bin', Readable.from(chunks));
      expect(info.size).toBe(data.length);
      expect((await store.head('rw/streamed.bin')).size).toBe(data.length);
      expect((await readAll((await store.get('rw/streamed.bin')).body)).equals(data)).toBe(true);
    });

    it('lists with a delimiter: objects and common prefixes, in key order', async () => {
      for (const key of ['ls/b/c.txt', 'ls/a.txt', 'ls/e/f/g.txt', 'ls/b/d.txt', 'ls/g.txt', 'ls/a-b.txt', 'lsx.txt']) {
        await store.put(key, Buffer.from(key));
      }
      const page = await store.list({ prefix: 'ls/', delimiter: '/' });
      expect(page.objects.map((o) => o.key).filter((k) => k !== 'ls/')).toEqual(['ls/a-b.txt', 'ls/a.txt', 'ls/g.txt']);
      expect(page.commonPrefixes).toEqual(['ls/b/', 'ls/e/']);
      expect(page.nextToken).toBeUndefined();
      const a = page.objects.find((o) => o.key === 'ls/a.txt');
      expect(a).toMatchObject({ size: 'ls/a.txt'.length });
      expect(a?.etag).toBe((await store.head('ls/a.txt')).etag);

      const deep = await store.list({ prefix: 'ls/' });
      expect(deep.objects.map((o) => o.key).filter((k) => !k.endsWith('/'))).toEqual(['ls/a-b.txt', 'ls/a.txt', 'ls/b/c.txt', 'ls/b/d.txt', 'ls/e/f/g.txt', 'ls/g.txt']);
      expect(deep.commonPrefixes).toEqual([]);

      const partial = await store.list({ prefix: 'ls/a', delimiter: '/' });
      expect(partial.objects.map((o) => o.key)).toEqual(['ls/a-b.txt', 'ls/a.txt']);
      const top = await store.list({ prefix: 'ls', delimiter: '/' });
      expect(top.commonPrefixes).toEqual(['ls/']);
      expect(top.objects.map((o) => o.key)).toEqual(['lsx.txt']);
      expect((await store.list({ prefix: 'nothing-here/' })).objects).toEqual([]);
    });

    it('paginates with maxKeys=2, with and without a delimiter', async () => {
      const keys = ['pg/k0', 'pg/k1', 'pg/k2', 'pg/k3', 'pg/k4', 'pg/k5', 'pg/k6'];
      for (const key of [...keys].reverse()) await store.put(key, Buffer.from(key));
      const flat = await listAll(store, { prefix: 'pg/k', maxKeys: 2 });
      expect(flat.keys).toEqual(keys);
      expect(flat.pages).toEqual([2, 2, 2, 1]);

      for (const key of ['pd/a', 'pd/b/1', 'pd/b/2', 'pd/c', 'pd/d/1', 'pd/e', 'pd/f/1/2']) await store.put(key, Buffer.from(key));
      const rolled = await listAll(store, { prefix: 'pd/', delimiter: '/', maxKeys: 2 });
      expect(rolled.keys.filter((k) => k !== 'pd/')).toEqual(['pd/a', 'pd/c', 'pd/e']);
      expect(rolled.prefixes).toEqual(['pd/b/', 'pd/d/', 'pd/f/']);
      expect(Math.max(...rolled.pages)).toBeLessThanOrEqual(2);
    });

    it('starts after a key (start-after), with and without a delimiter; a continuation token overrides it', async () => {
      for (const key of ['sa/a/1', 'sa/a/2', 'sa/b', 'sa/c/1', 'sa/c/2', 'sa/d']) await store.put(key, Buffer.from(key));
      const flat = await listAll(store, { prefix: 'sa/', startAfter: 'sa/a/2', maxKeys: 2 });
      expect(flat.keys.filter((k) => !k.endsWith('/'))).toEqual(['sa/b', 'sa/c/1', 'sa/c/2', 'sa/d']);
      // (Where start-after lies inside a common prefix, servers differ: versitygw omits that prefix.)
      const rolled = await store.list({ prefix: 'sa/', delimiter: '/', startAfter: 'sa/b' });
      expect(rolled.commonPrefixes).toEqual(['sa/c/']);
      expect(rolled.objects.map((o) => o.key)).toEqual(['sa/d']);
      const first = await store.list({ prefix: 'sa/', maxKeys: 1 });
      const next = await store.list({ prefix: 'sa/', maxKeys: 100, continuationToken: first.nextToken as string, startAfter: 'sa/c/2' });
      expect(next.objects.map((o) => o.key).filter((k) => !k.endsWith('/'))[0]).toBe(first.objects[0]?.key === 'sa/' ? 'sa/a/1' : 'sa/a/2');
    });

    it('keeps directory markers: an empty `dir/` object', async () => {
      const marker = await store.put('dm/sub/', Buffer.alloc(0));
      expect(marker).toMatchObject({ key: 'dm/sub/', size: 0 });
      expect(await store.head('dm/sub/')).toMatchObject({ key: 'dm/sub/', size: 0 });
      expect((await store.list({ prefix: 'dm/', delimiter: '/' })).commonPrefixes).toEqual(['dm/sub/']);
      expect((await store.list({ prefix: 'dm/sub/', delimiter: '/' })).objects.map((o) => o.key)).toEqual(['dm/sub/']);
      await store.delete('dm/sub/');
      await expectCode(store.head('dm/sub/'), 'NotFound');
    });

    it('round-trips user metadata with lower-case names', async () => {
      await store.put('md/file.txt', Buffer.from('x'), { metadata: { Owner: 'alice', 'run-id': '7' }, contentType: 'text/plain' });
      expect((await store.head('md/file.txt')).metadata).toEqual({ owner: 'alice', 'run-id': '7' });
      await store.put('md/file.txt', Buffer.from('y'));
      expect((await store.head('md/file.txt')).metadata).toEqual({});
    });

    it('assembles a multipart upload of 3 parts in part order', async () => {
      const parts = [pattern(MIN_PART_SIZE, 3), pattern(MIN_PART_SIZE + 1, 4), pattern(1234, 5)];
      const upload = await store.createMultipartUpload('mp/object.bin', { metadata: { kind: 'checkpoint' } });
      expect(upload.key).toBe('mp/object.bin');
      await upload.uploadPart(2, parts[1]!);
      await upload.uploadPart(1, parts[0]!);
      await upload.uploadPart(3, parts[2]!);
      await expectCode(store.head('mp/object.bin'), 'NotFound');
      const info = await upload.complete();
      const expected = Buffer.concat(parts);
      expect(info).toMatchObject({ key: 'mp/object.bin', size: expected.length });
      const head = await store.head('mp/object.bin');
      expect(head).toMatchObject({ size: expected.length, etag: info.etag, metadata: { kind: 'checkpoint' } });
      expect((await readAll((await store.get('mp/object.bin')).body)).equals(expected)).toBe(true);
      const middle = await store.get('mp/object.bin', { range: { start: MIN_PART_SIZE - 10, end: MIN_PART_SIZE + 10 } });
      expect((await readAll(middle.body)).equals(expected.subarray(MIN_PART_SIZE - 10, MIN_PART_SIZE + 10))).toBe(true);
      expect(await subject.pendingUploads('mp/')).toEqual([]);
      await upload.abort(); // after complete: a no-op, the object stays
      expect((await store.head('mp/object.bin')).size).toBe(expected.length);
    });

    it('aborts a multipart upload: no object, no pending upload, abort twice is fine', async () => {
      const upload = await store.createMultipartUpload('ab/object.bin');
      await upload.uploadPart(1, pattern(MIN_PART_SIZE, 6));
      expect(await subject.pendingUploads('ab/')).toEqual(['ab/object.bin']);
      await upload.abort();
      await upload.abort();
      await expectCode(store.head('ab/object.bin'), 'NotFound');
      expect(await subject.pendingUploads('ab/')).toEqual([]);
    });

    it('aborts an upload by its id, as a later process would; one already gone is not an error', async () => {
      const upload = await store.createMultipartUpload('byid/object.bin');
      await upload.uploadPart(1, pattern(MIN_PART_SIZE, 8));
      // A store gives its uploads an id that another process can abort them with, or does neither.
      expect(upload.uploadId !== undefined).toBe(store.abortMultipartUpload !== undefined);
      if (upload.uploadId !== undefined && store.abortMultipartUpload) {
        await store.abortMultipartUpload('byid/object.bin', upload.uploadId);
        expect(await subject.pendingUploads('byid/')).toEqual([]);
        await store.abortMultipartUpload('byid/object.bin', upload.uploadId);
      }
      await upload.abort(); // the owner's own abort after that: fine too
      expect(await subject.pendingUploads('byid/')).toEqual([]);
      await expectCode(store.head('byid/object.bin'), 'NotFound');
    });

    it('refuses to complete when a part other than the last is too small, then aborts cleanly', async () => {
      const upload = await store.createMultipartUpload('small/object.bin');
      await upload.uploadPart(1, Buffer.from('too small'));
      await upload.uploadPart(2, Buffer.from('last'));
      await expectCode(upload.complete(), 'InvalidArgument');
      await upload.abort();
      await expectCode(store.head('small/object.bin'), 'NotFound');
      expect(await subject.pendingUploads('small/')).toEqual([]);
    });

    it('copies content and metadata; a missing source is NotFound', async () => {
      const data = pattern(4096, 7);
      await store.put('cp/source.bin', data, { metadata: { origin: 'trainer' } });
      const info = await store.copy('cp/source.bin', 'cp/nested/destination.bin');
      expect(info).toMatchObject({ key: 'cp/nested/destination.bin', size: 4096 });
      expect(await store.head('cp/nested/destination.bin')).toMatchObject({ size: 4096, metadata: { origin: 'trainer' } });
      expect((await readAll((await store.get('cp/nested/destination.bin')).body)).equals(data)).toBe(true);
      expect((await store.head('cp/source.bin')).size).toBe(4096);
      await expectCode(store.copy('cp/none', 'cp/other'), 'NotFound');
    });

    it('deletes idempotently', async () => {
      await store.put('del/file', Buffer.from('x'));
      await store.delete('del/file');
      await store.delete('del/file');
      await store.delete('del/never-existed');
      await expectCode(store.head('del/file'), 'NotFound');
    });

    it('deletes many keys, missing ones included', async () => {
      const keys = ['dm2/a', 'dm2/b/c', 'dm2/d'];
      for (const key of keys) await store.put(key, Buffer.from(key));
      expect(await store.deleteMany([...keys, 'dm2/missing'])).toEqual([]);
      for (const key of keys) await expectCode(store.head(key), 'NotFound');
      expect(await store.deleteMany([])).toEqual([]);
    });

    it('fails a get with PreconditionFailed once the ETag no longer matches', async () => {
      const first = await store.put('pc/file', Buffer.from('version 1'));
      const ok = await store.get('pc/file', { ifMatch: first.etag });
      expect((await readAll(ok.body)).toString()).toBe('version 1');
      await expectCode(store.get('pc/file', { ifMatch: 'not-the-etag' }), 'PreconditionFailed');
      const second = await store.put('pc/file', Buffer.from('version 2!'));
      expect(second.etag).not.toBe(first.etag);
      await expectCode(store.get('pc/file', { ifMatch: first.etag, range: { start: 0, end: 3 } }), 'PreconditionFailed');
    });

    it('rejects an empty key', async () => {
      await expectCode(store.head(''), 'InvalidArgument');
    });
  });
}

objectStoreContract('LocalDirStore', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-local-'));
  const uploads = path.join(root, STATE_DIR, 'uploads');
  return {
    store: new LocalDirStore(root),
    pendingUploads: async (prefix) => (fs.existsSync(uploads) ? fs.readdirSync(uploads) : [])
      .map((id) => fs.readFileSync(path.join(uploads, id, UPLOAD_KEY_FILE), 'utf8'))
      .filter((key) => key.startsWith(prefix)),
    cleanup: async () => fs.rmSync(root, { recursive: true, force: true }),
  };
});

objectStoreContract('MemoryStore', async () => {
  const store = new MemoryStore();
  return { store, pendingUploads: async (prefix) => store.pendingUploads().filter((k) => k.startsWith(prefix)), cleanup: async () => {} };
});

objectStoreContract('S3Store against the real S3-compatible test server', async () => {
  const server = testS3();
  const bucket = await createBucket(server, 'contract');
  const raw = s3Client(server);
  return {
    store: new S3Store({
      bucket,
      endpoint: server.endpoint,
      region: server.region,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    }),
    pendingUploads: async (prefix) => {
      const output = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
      return (output.Uploads ?? []).map((u) => u.Key ?? '');
    },
    cleanup: async () => raw.destroy(),
  };
});
