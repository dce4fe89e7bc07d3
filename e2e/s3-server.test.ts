import { HeadBucketCommand, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { createBucket, s3Client, testS3 } from './support/s3-server';

describe('the shared S3 test server', () => {
  it('is a real S3 endpoint: buckets and objects round-trip through the SDK', async () => {
    const server = testS3();
    const bucket = await createBucket(server, 'smoke');
    const client = s3Client(server);
    try {
      await client.send(new HeadBucketCommand({ Bucket: bucket }));
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'a/b.txt', Body: 'hello' }));
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'a/b.txt' }));
      expect(await got.Body?.transformToString()).toBe('hello');
    } finally {
      client.destroy();
    }
  });
});
