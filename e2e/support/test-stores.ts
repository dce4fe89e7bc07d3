import { inspect } from 'node:util';
import { isObjectStoreError, type ObjectStoreErrorCode } from '../../src/objectstore/errors';
import { S3Store, type S3StoreOptions } from '../../src/objectstore/s3';
import { createBucket, testS3, type TestS3 } from './s3-server';

/** S3Stores on a fresh bucket of the shared test server; `open` may override any option (a wrong key, another bucket). */
export interface TestStores {
  readonly server: TestS3;
  readonly bucket: string;
  open(options?: Partial<S3StoreOptions>): S3Store;
}

/** Registers jest hooks that create a bucket named after `stem` before the suite and close every opened store after it. */
export function testStores(stem: string): TestStores {
  let server: TestS3 | undefined;
  let bucket: string | undefined;
  const opened: S3Store[] = [];
  beforeAll(async () => {
    server = testS3();
    bucket = await createBucket(server, stem);
  });
  afterAll(() => opened.forEach((store) => store.close()));
  const ready = () => {
    if (!server || bucket === undefined) throw new Error('testStores: used outside a test (the bucket is made in beforeAll)');
    return { server, bucket };
  };
  return {
    get server() {
      return ready().server;
    },
    get bucket() {
      return ready().bucket;
    },
    open(options = {}) {
      const { server: s, bucket: b } = ready();
      const store = new S3Store({ bucket: b, endpoint: s.endpoint, region: s.region, credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey }, ...options }, {});
      opened.push(store);
      return store;
    },
  };
}

/** The error a promise rejects with, checked to be an ObjectStoreError of `code` whose message and details leak none of `secrets`. */
export async function storeFailure(promise: Promise<unknown>, code: ObjectStoreErrorCode, secrets: string[] = []): Promise<Error> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!isObjectStoreError(error, code)) throw new Error(`expected ObjectStoreError ${code}, got ${inspect(error)}`);
  for (const secret of secrets) {
    expect(error.message).not.toContain(secret);
    expect(inspect(error, { depth: 5 })).not.toContain(secret);
  }
  return error;
}
