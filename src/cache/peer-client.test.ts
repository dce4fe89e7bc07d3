import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BlockRef } from './block';
import { PeerClient, PeerError } from './peer-client';
import { HEADERS } from './protocol';

const REF: BlockRef = { endpoint: '', bucket: 'models', key: 'w.bin', etag: 'e', objectSize: 100, index: 0, blockSize: 64 * 1024 };

/** A real HTTP server on 127.0.0.1:0 answering every request with `handler`. */
async function serve(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('PeerClient', () => {
  const client = new PeerClient({ token: 'token-0123456789abcdef', headersTimeoutMs: 200, requestTimeoutMs: 500 });
  afterAll(() => client.close());

  it('sends the token and reads the range into the given buffer', async () => {
    let authorization: string | undefined;
    const peer = await serve((request, response) => {
      authorization = request.headers.authorization;
      response.writeHead(200, { 'content-length': 10, [HEADERS.servedFrom]: 'disk' });
      response.end(Buffer.from('0123456789'));
    });
    const into = Buffer.alloc(10);
    const fetched = await client.fetchBlock(peer.url, REF, { start: 0, end: 10 }, { into });
    expect(fetched.servedFrom).toBe('disk');
    expect(fetched.data).toBe(into);
    expect(into.toString()).toBe('0123456789');
    expect(authorization).toBe('Bearer token-0123456789abcdef');
    await peer.close();
  });

  it.each([
    [401, 'Unauthorized'],
    [404, 'ObjectChanged'],
    [412, 'ObjectChanged'],
    [421, 'Rejected'],
    [400, 'Rejected'],
    [502, 'Unavailable'],
    [503, 'Unavailable'],
  ])('turns HTTP %d into %s with the server\'s message', async (status, code) => {
    const peer = await serve((_request, response) => {
      const text = JSON.stringify({ error: { code: 'X', message: `because ${status}` } });
      response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      response.end(text);
    });
    const error = await client.fetchBlock(peer.url, REF, { start: 0, end: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeerError);
    expect(error).toMatchObject({ code, status, message: expect.stringContaining(`because ${status}`) });
    await peer.close();
  });

  it('calls a 4xx without granary\'s JSON error body NotGranary, naming its type but not echoing its body', async () => {
    const peer = await serve((_request, response) => {
      const text = '<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>';
      response.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(text) });
      response.end(text);
    });
    for (const call of [() => client.fetchBlock(peer.url, REF, { start: 0, end: 10 }), () => client.load(peer.url, REF), () => client.info(peer.url)]) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'NotGranary', status: 403, contentType: 'application/xml' });
      expect((error as Error).message).not.toContain('<');
    }
    await peer.close();
  });

  it('still maps the status of an error whose body it does not read (chunked), and keeps working after it', async () => {
    let calls = 0;
    const peer = await serve((_request, response) => {
      calls++;
      if (calls === 1) {
        response.writeHead(503, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
        response.end('busy');
        return;
      }
      response.writeHead(200, { 'content-length': 10, [HEADERS.servedFrom]: 'ram' });
      response.end('0123456789');
    });
    await expect(client.fetchBlock(peer.url, REF, { start: 0, end: 10 })).rejects.toMatchObject({ code: 'Unavailable', status: 503 });
    expect((await client.fetchBlock(peer.url, REF, { start: 0, end: 10 })).data.toString()).toBe('0123456789');
    await peer.close();
  });

  it('reuses one connection for requests in a row, and reconnects when the peer closed it while idle', async () => {
    const sockets = new Set<unknown>();
    const peer = await serve((request, response) => {
      sockets.add(request.socket);
      response.writeHead(200, { 'content-length': 10, [HEADERS.servedFrom]: 'ram' });
      response.end('0123456789');
    });
    for (let i = 0; i < 3; i++) expect((await client.fetchBlock(peer.url, REF, { start: 0, end: 10 })).data.toString()).toBe('0123456789');
    expect(sockets.size).toBe(1);
    // The server drops the idle connection (its keep-alive timed out): the next request reconnects.
    await Promise.all([...sockets].map((socket) => new Promise((closed) => (socket as import('node:net').Socket).once('close', closed).destroy())));
    expect((await client.fetchBlock(peer.url, REF, { start: 0, end: 10 })).data.toString()).toBe('0123456789');
    expect(sockets.size).toBe(2);
    await peer.close();
  });

  it('retries a JSON call once on a new socket when the server closed the reused keep-alive one as the request went out', async () => {
    const served = new WeakSet<object>();
    let stale = false;
    let sockets = 0;
    const peer = await serve((request, response) => {
      if (stale && served.has(request.socket)) {
        request.socket.destroy();
        return;
      }
      if (!served.has(request.socket)) sockets++;
      served.add(request.socket);
      const text = JSON.stringify({ capacityBytes: 1, ramBytes: 1, diskBytes: 0, endpoint: '', version: 'v' });
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      response.end(text);
    });
    const own = new PeerClient({ token: 'token-0123456789abcdef' });
    try {
      await expect(own.info(peer.url)).resolves.toMatchObject({ version: 'v' });
      stale = true;
      await expect(own.info(peer.url)).resolves.toMatchObject({ version: 'v' });
      expect(sockets).toBe(2);
    } finally {
      own.close();
      await peer.close();
    }
  });

  it('gives up on a peer that does not answer within the headers timeout', async () => {
    const peer = await serve(() => undefined);
    const started = Date.now();
    await expect(client.fetchBlock(peer.url, REF, { start: 0, end: 10 })).rejects.toMatchObject({ code: 'TimedOut', message: expect.stringMatching(/did not answer/) });
    expect(Date.now() - started).toBeLessThan(5000);
    await peer.close();
  });

  it('gives up on a body that stalls past the request timeout', async () => {
    const peer = await serve((_request, response) => {
      response.writeHead(200, { 'content-length': 10, [HEADERS.servedFrom]: 'ram' });
      response.write('01234');
    });
    await expect(client.fetchBlock(peer.url, REF, { start: 0, end: 10 })).rejects.toMatchObject({ code: 'TimedOut' });
    await peer.close();
  });

  it('refuses a body of the wrong length or without a source', async () => {
    const wrongLength = await serve((_request, response) => {
      response.writeHead(200, { 'content-length': 5, [HEADERS.servedFrom]: 'ram' });
      response.end('01234');
    });
    await expect(client.fetchBlock(wrongLength.url, REF, { start: 0, end: 10 })).rejects.toMatchObject({ code: 'Unavailable', message: expect.stringMatching(/5 bytes for a 10-byte range/) });
    await wrongLength.close();
    const noSource = await serve((_request, response) => {
      response.writeHead(200, { 'content-length': 10 });
      response.end('0123456789');
    });
    await expect(client.fetchBlock(noSource.url, REF, { start: 0, end: 10 })).rejects.toMatchObject({ code: 'Unavailable', message: expect.stringMatching(/x-granary-served-from/) });
    await noSource.close();
  });

  it('reads a raw connection\'s code, not its message: no answer in time is TimedOut, a refused, reset or cut-short block Unavailable', async () => {
    const hanging = await serve(() => undefined);
    await expect(client.fetchBlock(hanging.url, REF, { start: 0, end: 10 })).rejects.toMatchObject({ code: 'TimedOut', cause: expect.objectContaining({ code: 'HeadersTimeout' }) });
    await hanging.close();
    const reset = await serve((request) => request.socket.resetAndDestroy());
    await expect(client.fetchBlock(reset.url, REF, { start: 0, end: 10 })).rejects.toMatchObject({ code: 'Unavailable', cause: expect.objectContaining({ code: 'ConnectionReset' }) });
    await reset.close();
    const short = await serve((_request, response) => {
      response.writeHead(200, { 'content-length': 10, [HEADERS.servedFrom]: 'ram' });
      response.write('01234', () => response.socket?.destroy());
    });
    await expect(client.fetchBlock(short.url, REF, { start: 0, end: 10 })).rejects.toMatchObject({ code: 'Unavailable', cause: expect.objectContaining({ code: 'ShortBody' }) });
    await short.close();
    const gone = await serve(() => undefined);
    await gone.close();
    await expect(client.fetchBlock(gone.url, REF, { start: 0, end: 10 })).rejects.toMatchObject({ code: 'Unavailable', cause: expect.objectContaining({ code: 'ConnectionRefused' }) });
  });

  it('reports a refused connection as Unavailable', async () => {
    const peer = await serve(() => undefined);
    const { url } = peer;
    await peer.close();
    await expect(client.info(url)).rejects.toMatchObject({ code: 'Unavailable' });
  });

  it('aborts when the caller aborts', async () => {
    const peer = await serve(() => undefined);
    const controller = new AbortController();
    const pending = client.fetchBlock(peer.url, REF, { start: 0, end: 10 }, { signal: controller.signal });
    controller.abort(new Error('unmount'));
    await expect(pending).rejects.toMatchObject({ code: 'Unavailable', message: expect.stringMatching(/aborted/) });
    await peer.close();
  });
});
