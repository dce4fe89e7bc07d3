import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { EndpointNotReady, ProbeTimeout } from './membership/membership';
import { PeerClient, PeerError } from './peer-client';
import { NOT_PROBED, peerProblem } from './peer-problem';

const TOKEN_FLAG = '--cache-token-file';

/** A real TCP server on 127.0.0.1:0 that hands each connection to `onConnection`. */
async function listen(server: net.Server): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

/** An HTTP server answering every request with `status`, `contentType` and `body`. */
function answering(status: number, contentType: string, body: string) {
  return listen(http.createServer((_request, response) => {
    response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    response.end(body);
  }));
}

describe('peerProblem: why GET /v1/info of a cache server failed, from the typed errors', () => {
  const client = new PeerClient({ token: 'token-0123456789abcdef', headersTimeoutMs: 300, requestTimeoutMs: 1000 });
  afterAll(() => client.close());
  const problemOf = async (url: string) => {
    const error = await client.info(url).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(PeerError);
    return peerProblem(error, TOKEN_FLAG);
  };

  it('names a refused connection', async () => {
    const closed = await listen(net.createServer());
    await closed.close();
    expect(await problemOf(closed.url)).toEqual({ code: 'ConnectionRefused', reason: 'connection refused' });
  });

  it('names a refused token with the flag to check', async () => {
    const server = await answering(401, 'application/json', JSON.stringify({ error: { code: 'Unauthorized', message: 'a valid cluster token is required' } }));
    expect(await problemOf(server.url)).toEqual({ code: 'Unauthorized', reason: '401: the cache token was refused — check --cache-token-file' });
    await server.close();
  });

  it('says an S3 server (XML), a web page or other JSON is not a granary cache server, without echoing the body', async () => {
    const s3 = await answering(400, 'application/xml', '<?xml version="1.0"?><Error><Code>InvalidBucketName</Code></Error>');
    expect(await problemOf(s3.url)).toEqual({ code: 'NotGranary', reason: "not a granary cache server (answered 400 application/xml, not granary's JSON)" });
    const page = await answering(200, 'text/html', '<html>hello</html>');
    expect(await problemOf(page.url)).toEqual({ code: 'NotGranary', reason: "not a granary cache server (answered 200 text/html, not granary's JSON)" });
    const otherJson = await answering(200, 'application/json', '{"status":"ok"}');
    expect(await problemOf(otherJson.url)).toMatchObject({ code: 'NotGranary' });
    await Promise.all([s3.close(), page.close(), otherJson.close()]);
  });

  it('says a server that does not speak HTTP is not a granary cache server', async () => {
    const ssh = await listen(net.createServer((socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n')));
    expect(await problemOf(ssh.url)).toMatchObject({ code: 'NotGranary', reason: expect.stringMatching(/^not a granary cache server \(its answer is not HTTP\/1\.1/) });
    await ssh.close();
  });

  it('names a server that accepts but never answers a timeout', async () => {
    const silent = await listen(net.createServer(() => undefined));
    expect(await problemOf(silent.url)).toEqual({ code: 'Timeout', reason: 'timeout: no answer in time' });
    await silent.close();
  });

  it('names a granary server that is starting not ready, and a 5xx by its status', async () => {
    const starting = await answering(503, 'application/json', JSON.stringify({ error: { code: 'NotReady', message: 'starting' } }));
    expect(await problemOf(starting.url)).toEqual({ code: 'NotReady', reason: '503: not ready (starting or stopping)' });
    const broken = await answering(500, 'text/plain', 'oops');
    expect(await problemOf(broken.url)).toMatchObject({ code: 'Failed', reason: expect.stringMatching(/^answered 500: /) });
    await Promise.all([starting.close(), broken.close()]);
  });

  it("names the membership's own reasons: a probe timeout, an endpoint discovery marks not ready, no probe yet", () => {
    expect(peerProblem(new ProbeTimeout(2000), TOKEN_FLAG)).toEqual({ code: 'Timeout', reason: 'timeout: no answer within 2000 ms' });
    expect(peerProblem(new EndpointNotReady('Kubernetes marks it not ready'), TOKEN_FLAG)).toEqual({ code: 'NotReady', reason: 'Kubernetes marks it not ready' });
    expect(peerProblem(undefined, TOKEN_FLAG)).toBe(NOT_PROBED);
    expect(peerProblem(new Error('it reported an invalid capacity (-1)'), TOKEN_FLAG)).toEqual({ code: 'Failed', reason: 'it reported an invalid capacity (-1)' });
  });
});
