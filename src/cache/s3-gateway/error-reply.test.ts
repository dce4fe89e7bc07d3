import { Readable } from 'node:stream';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { errorReply, escapeXml, S3Error } from './error-reply';

describe('errorReply', () => {
  const context = { method: 'GET', resource: '/bucket/a&b <c>.txt', requestId: 'req-1' };

  it('writes S3\'s Error document, escaped, with the status of the code', () => {
    const reply = errorReply(new S3Error('SignatureDoesNotMatch', 'the "signature" & <scope> differ'), context);
    expect(reply.status).toBe(403);
    expect(reply.headers).toEqual({ 'content-type': 'application/xml', 'x-amz-request-id': 'req-1' });
    expect(reply.body).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code>' +
        '<Message>the &quot;signature&quot; &amp; &lt;scope&gt; differ</Message>' +
        '<Resource>/bucket/a&amp;b &lt;c&gt;.txt</Resource><RequestId>req-1</RequestId></Error>',
    );
  });

  it('answers HEAD with the status and no body', () => {
    const reply = errorReply(new S3Error('AuthorizationHeaderMalformed', 'bad'), { ...context, method: 'HEAD' });
    expect(reply).toEqual({ status: 400, headers: { 'x-amz-request-id': 'req-1' }, body: '' });
  });

  it('replaces what XML cannot hold, keeping unicode', () => {
    expect(escapeXml('k\u0001ey-\u00e9t\u00e9-\u{1F600}-\uD800\t')).toBe('k\uFFFDey-\u00e9t\u00e9-\u{1F600}-\uFFFD\t');
  });

  it('is read by the AWS SDK as the error code and message', async () => {
    const reply = errorReply(new S3Error('RequestTimeTooSkewed', 'fix the clock & retry'), context);
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: 'http://gateway.test',
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-secret-secret' },
      requestHandler: {
        handle: async () => ({ response: { statusCode: reply.status, reason: 'Forbidden', headers: reply.headers, body: Readable.from([Buffer.from(reply.body)]) } }),
      },
    });
    const failure = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'k' })).catch((error: unknown) => error);
    expect(failure).toMatchObject({ name: 'RequestTimeTooSkewed', message: 'fix the clock & retry', $metadata: { httpStatusCode: 403, requestId: 'req-1' } });
  });
});
