import { bodyLength, ExpectFix, lowerCaseExpect, MAX_HEAD_BYTES } from './expect-header';

const head = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`;
const PUT = head(['PUT /bucket/key?partNumber=1 HTTP/1.1', 'Host: 127.0.0.1', 'Expect: 100-Continue', 'Content-Length: 5']);
const GET = head(['GET /bucket/key HTTP/1.1', 'Host: 127.0.0.1', 'X-Amz-Meta-Note: 100-Continue']);

/** Feeds `chunks` through one ExpectFix and returns all it let out. */
async function through(chunks: string[]): Promise<string> {
  const fix = new ExpectFix();
  const out: Buffer[] = [];
  fix.on('data', (chunk: Buffer) => out.push(chunk));
  const ended = new Promise((resolve) => fix.on('end', resolve));
  for (const chunk of chunks) fix.write(Buffer.from(chunk, 'latin1'));
  fix.end();
  await ended;
  return Buffer.concat(out).toString('latin1');
}

describe('lowerCaseExpect', () => {
  it('lower-cases the Expect value only, whatever the header name\'s case, keeping the length', () => {
    const fixed = lowerCaseExpect(Buffer.from(PUT)).toString();
    expect(fixed).toContain('Expect: 100-continue\r\n');
    expect(fixed).toContain('PUT /bucket/key?partNumber=1 HTTP/1.1');
    expect(fixed).toHaveLength(PUT.length);
    expect(lowerCaseExpect(Buffer.from('expect:100-CONTINUE\r\n')).toString()).toBe('expect:100-continue\r\n');
  });

  it('leaves a head alone whose signature covers Expect (in the Authorization header or a presigned query)', () => {
    const signed = head(['PUT /b/k HTTP/1.1', 'Authorization: AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/s3/aws4_request, SignedHeaders=expect;host;x-amz-date, Signature=00', 'Expect: 100-Continue']);
    expect(lowerCaseExpect(Buffer.from(signed)).toString()).toBe(signed);
    const presigned = head(['PUT /b/k?X-Amz-SignedHeaders=expect%3Bhost&X-Amz-Signature=00 HTTP/1.1', 'Expect: 100-Continue']);
    expect(lowerCaseExpect(Buffer.from(presigned)).toString()).toBe(presigned);
    const unsigned = head(['PUT /b/k HTTP/1.1', 'Authorization: AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/s3/aws4_request, SignedHeaders=content-length;host;x-amz-date, Signature=00', 'Expect: 100-Continue']);
    expect(lowerCaseExpect(Buffer.from(unsigned)).toString()).toContain('Expect: 100-continue');
  });

  it('leaves other headers that hold the same words alone', () => {
    expect(lowerCaseExpect(Buffer.from(GET)).toString()).toBe(GET);
  });
});

describe('bodyLength', () => {
  it('is the Content-Length, 0 without one, unknown for a chunked body', () => {
    expect(bodyLength(Buffer.from(PUT))).toBe(5);
    expect(bodyLength(Buffer.from(GET))).toBe(0);
    expect(bodyLength(Buffer.from(head(['PUT /k HTTP/1.1', 'Transfer-Encoding: chunked'])))).toBe('unknown');
  });
});

describe('ExpectFix', () => {
  it('fixes every request head of a keep-alive connection and never touches a body, however the bytes are cut', async () => {
    const body = 'Expect: 100-Continue\r\n\r\n'.slice(0, 5);
    const stream = `${PUT}${body}${GET}`;
    const expected = `${PUT.replace('100-Continue', '100-continue')}${body}${GET}`;
    expect(await through([stream])).toBe(expected);
    // Cut at every byte: a head split anywhere is still found and fixed.
    for (let cut = 1; cut < stream.length; cut += 1) expect(await through([stream.slice(0, cut), stream.slice(cut)])).toBe(expected);
  });

  it('passes the rest of the connection through as is after a chunked request', async () => {
    const chunked = head(['PUT /k HTTP/1.1', 'Transfer-Encoding: chunked', 'Expect: 100-Continue']);
    const after = `5\r\nhello\r\n0\r\n\r\n${PUT}`;
    expect(await through([chunked, after])).toBe(`${chunked.replace('100-Continue', '100-continue')}${after}`);
  });

  it('gives up on a head longer than any S3 client sends and relays it unchanged', async () => {
    const huge = `GET / HTTP/1.1\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}\r\nExpect: 100-Continue\r\n\r\n`;
    expect(await through([huge.slice(0, MAX_HEAD_BYTES + 10), huge.slice(MAX_HEAD_BYTES + 10)])).toBe(huge);
  });

  it('lets out a head cut short by the end of the connection', async () => {
    expect(await through(['GET / HTTP/1.1\r\nHost: x'])).toBe('GET / HTTP/1.1\r\nHost: x');
  });
});
