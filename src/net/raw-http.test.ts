import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { ConnectionError } from './errors';
import { KEEP_ALIVE_MARGIN_MS, RawHttpPool } from './raw-http';

/** A TCP server on 127.0.0.1:0 handing each connection to `onConnection`; close() destroys the open ones, then stops. */
async function listening(onConnection: (socket: net.Socket) => void): Promise<{ url: URL; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: new URL(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`),
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

/** A raw TCP server that answers each request with `response`, written in pieces of `piece` bytes. */
function rawServer(response: Buffer, piece: number): Promise<{ url: URL; close: () => Promise<void> }> {
  return listening((socket) => {
    socket.on('data', async () => {
      for (let offset = 0; offset < response.length; offset += piece) {
        socket.write(response.subarray(offset, offset + piece));
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
  });
}

/** A raw TCP server that runs `onRequest` with the socket of each connection's first request. */
function scriptedServer(onRequest: (socket: net.Socket) => void): Promise<{ url: URL; close: () => Promise<void> }> {
  return listening((socket) => socket.once('data', () => onRequest(socket)));
}

const never = new Promise<never>(() => undefined);

/**
 * An HTTP/1.1 server over raw TCP that answers every request with `head` and a 2-byte body, counting its
 * connections; once `staleAfter` is set, a request on a connection that has served before is met with a
 * close and no answer (what a client sees when the server's idle timeout fires as its request goes out).
 */
async function keepAliveServer(head = ''): Promise<{ url: URL; connections: () => number; makeStale: () => void; close: () => Promise<void> }> {
  const served = new WeakSet<net.Socket>();
  let connections = 0;
  let stale = false;
  const server = await listening((socket) => {
    connections++;
    socket.on('data', () => {
      if (stale && served.has(socket)) {
        socket.destroy();
        return;
      }
      served.add(socket);
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n${head}\r\nok`);
    });
  });
  return { ...server, connections: () => connections, makeStale: () => (stale = true) };
}

describe('RawHttpPool', () => {
  it('reads a head split over many reads and a body into the given buffer, byte by byte', async () => {
    const body = Buffer.from('granary block bytes');
    const server = await rawServer(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nX-Granary-Served-From: disk\r\n\r\n`), body]), 1);
    const pool = new RawHttpPool(4);
    const into = Buffer.alloc(body.length);
    const response = await pool.get(server.url, '/v1/block', {}, into, 1000, never);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-granary-served-from')).toBe('disk');
    expect(response.body).toBe(into);
    expect(into.equals(body)).toBe(true);
    pool.close();
    await server.close();
  });

  it('refuses a 2xx body whose length is not the buffer size, and a head that is not HTTP', async () => {
    const wrong = await rawServer(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc'), 64);
    const pool = new RawHttpPool(4);
    await expect(pool.get(wrong.url, '/', {}, Buffer.alloc(5), 1000, never)).rejects.toThrow(/3 bytes for a 5-byte range/);
    await expect(pool.get(wrong.url, '/', {}, Buffer.alloc(5), 1000, never)).rejects.toMatchObject({ code: 'BadBody' });
    await wrong.close();
    const garbage = await rawServer(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'), 64);
    await expect(pool.get(garbage.url, '/', {}, Buffer.alloc(5), 1000, never)).rejects.toThrow(/not HTTP\/1\.1/);
    await expect(pool.get(garbage.url, '/', {}, Buffer.alloc(5), 1000, never)).rejects.toMatchObject({ code: 'BadHead' });
    pool.close();
    await garbage.close();
  });

  it('gives a non-2xx answer with its body (kept short), ready for the next request on the same connection', async () => {
    const server = await rawServer(Buffer.from('HTTP/1.1 412 Precondition Failed\r\nContent-Length: 7\r\n\r\nchanged'), 64);
    const pool = new RawHttpPool(4);
    const response = await pool.get(server.url, '/', {}, Buffer.alloc(5), 1000, never);
    expect({ status: response.status, body: response.body.toString() }).toEqual({ status: 412, body: 'changed' });
    pool.close();
    await server.close();
  });

  it('reuses a connection until a second before the idle timeout the server announced, and never one it will close', async () => {
    const announced = await keepAliveServer('Keep-Alive: timeout=3\r\n');
    const pool = new RawHttpPool(4);
    try {
      await pool.get(announced.url, '/', {}, undefined, 1000, never);
      await pool.get(announced.url, '/', {}, undefined, 1000, never);
      expect(announced.connections()).toBe(1);
      // Past 3 s minus the margin since the last answer: the client stops reusing before the server closes.
      const clock = jest.spyOn(Date, 'now').mockReturnValue(Date.now() + 3000 - KEEP_ALIVE_MARGIN_MS + 1);
      try {
        await pool.get(announced.url, '/', {}, undefined, 1000, never);
      } finally {
        clock.mockRestore();
      }
      expect(announced.connections()).toBe(2);
    } finally {
      pool.close();
      await announced.close();
    }
    for (const head of ['Keep-Alive: timeout=1\r\n', 'Connection: close\r\n']) {
      const closing = await keepAliveServer(head);
      const fresh = new RawHttpPool(4);
      try {
        await fresh.get(closing.url, '/', {}, undefined, 1000, never);
        await fresh.get(closing.url, '/', {}, undefined, 1000, never);
        expect({ head, connections: closing.connections() }).toEqual({ head, connections: 2 });
      } finally {
        fresh.close();
        await closing.close();
      }
    }
  });

  it('retries a request the server closed a stale keep-alive under on a new connection, even when every pooled one is stale', async () => {
    const server = await keepAliveServer();
    const pool = new RawHttpPool(4);
    try {
      // Three connections in the pool, each having served once.
      const three = await Promise.all([1, 2, 3].map(() => pool.get(server.url, '/', {}, undefined, 1000, never)));
      expect(three.map((response) => response.status)).toEqual([200, 200, 200]);
      expect(server.connections()).toBe(3);
      server.makeStale();
      const response = await pool.get(server.url, '/', {}, undefined, 1000, never);
      expect({ status: response.status, body: response.body.toString() }).toEqual({ status: 200, body: 'ok' });
      expect(server.connections()).toBe(4);
    } finally {
      pool.close();
      await server.close();
    }
  });

  it('fails without a head in time and does not retry a peer that hangs', async () => {
    let requests = 0;
    const server = net.createServer((socket) => socket.on('data', () => requests++));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const pool = new RawHttpPool(4);
    const url = new URL(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    await expect(pool.get(url, '/', {}, Buffer.alloc(5), 100, never)).rejects.toThrow(/no answer within 100 ms/);
    expect(requests).toBe(1);
    await expect(pool.get(url, '/', {}, Buffer.alloc(5), 100, never)).rejects.toMatchObject({ code: 'HeadersTimeout', reused: false });
    pool.close();
    await new Promise((resolve) => server.close(resolve));
  });
});

/**
 * A port whose listener never accepts: a child process listens with a backlog of 1 and blocks, and two connections
 * fill its accept queue, so the kernel drops every further SYN and a new connection stays "connecting".
 */
async function unacceptingPort(): Promise<{ url: URL; close: () => void }> {
  const script = "const s=require('net').createServer().listen({port:0,host:'127.0.0.1',backlog:1},()=>{process.stdout.write(s.address().port+'\\n');Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0)})";
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  const fillers = [net.connect(port, '127.0.0.1'), net.connect(port, '127.0.0.1')];
  await Promise.all(fillers.map((filler) => once(filler, 'connect')));
  return {
    url: new URL(`http://127.0.0.1:${port}`),
    close: () => {
      for (const filler of fillers) filler.destroy();
      child.kill();
    },
  };
}

describe('RawHttpPool errors', () => {
  /** The error `promise` rejects with, which must be a ConnectionError. */
  async function failure(promise: Promise<unknown>): Promise<ConnectionError> {
    const error = await promise.then(() => undefined, (e: unknown) => e);
    if (!(error instanceof ConnectionError)) throw new Error(`expected a ConnectionError, got ${String(error)}`);
    return error;
  }

  it('ConnectionRefused when nothing listens', async () => {
    const server = await scriptedServer(() => undefined);
    await server.close();
    const pool = new RawHttpPool(4);
    const error = await failure(pool.get(server.url, '/', {}, undefined, 1000, never));
    expect(error).toMatchObject({ code: 'ConnectionRefused', reused: false, cause: expect.objectContaining({ code: 'ECONNREFUSED' }) });
    pool.close();
  });

  it('ConnectFailed when the connection cannot be opened for another reason (the network is unreachable)', async () => {
    const pool = new RawHttpPool(4);
    // TCP cannot connect to a multicast address: Linux answers ENETUNREACH at once, whatever the routes.
    const error = await failure(pool.get(new URL('http://224.0.0.1:80'), '/', {}, undefined, 5000, never));
    expect(error).toMatchObject({ code: 'ConnectFailed', reused: false, cause: expect.objectContaining({ code: 'ENETUNREACH' }) });
    pool.close();
  });

  it('ConnectTimeout when the connection does not open within the connect timeout, or within the headers timeout without one', async () => {
    const port = await unacceptingPort();
    const pool = new RawHttpPool(4, { connectTimeoutMs: 100 });
    const plain = new RawHttpPool(4);
    try {
      const error = await failure(pool.get(port.url, '/', {}, undefined, 10_000, never));
      expect(error).toMatchObject({ code: 'ConnectTimeout', message: expect.stringMatching(/did not open within 100 ms/) });
      await expect(plain.get(port.url, '/', {}, undefined, 100, never)).rejects.toMatchObject({ code: 'ConnectTimeout' });
    } finally {
      pool.close();
      plain.close();
      port.close();
    }
  });

  it('ConnectionReset when the peer closes or resets the connection before the head is whole, not retried on a fresh connection', async () => {
    let requests = 0;
    const closing = await scriptedServer((socket) => {
      requests++;
      socket.end('HTTP/1.1 200 OK\r\nContent-Le');
    });
    const pool = new RawHttpPool(4);
    expect(await failure(pool.get(closing.url, '/', {}, undefined, 1000, never))).toMatchObject({ code: 'ConnectionReset', reused: false });
    expect(requests).toBe(1);
    await closing.close();
    const resetting = await scriptedServer((socket) => socket.resetAndDestroy());
    expect(await failure(pool.get(resetting.url, '/', {}, undefined, 1000, never))).toMatchObject({ code: 'ConnectionReset', cause: expect.objectContaining({ code: 'ECONNRESET' }) });
    pool.close();
    await resetting.close();
  });

  it('ShortBody when the connection ends before Content-Length bytes of body', async () => {
    const server = await scriptedServer((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234'));
    const pool = new RawHttpPool(4);
    const error = await failure(pool.get(server.url, '/', {}, Buffer.alloc(10), 1000, never));
    expect(error).toMatchObject({ code: 'ShortBody', message: expect.stringMatching(/after 5 of 10 bytes/) });
    pool.close();
    await server.close();
  });

  it('BodyTimeout when the body stops moving for the body timeout, however long the head took', async () => {
    const server = await scriptedServer((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234'));
    const pool = new RawHttpPool(4, { bodyTimeoutMs: 100 });
    const error = await failure(pool.get(server.url, '/', {}, Buffer.alloc(10), 10_000, never));
    expect(error).toMatchObject({ code: 'BodyTimeout', message: expect.stringMatching(/for 100 ms \(5 of 10 read\)/) });
    pool.close();
    await server.close();
  });

  it('BadHead for a head larger than 16 KiB, BadBody for more bytes than announced', async () => {
    const huge = await scriptedServer((socket) => socket.write(`HTTP/1.1 200 OK\r\nX-Padding: ${'x'.repeat(17 * 1024)}`));
    const pool = new RawHttpPool(4);
    expect(await failure(pool.get(huge.url, '/', {}, undefined, 1000, never))).toMatchObject({ code: 'BadHead', message: expect.stringMatching(/larger than 16384 bytes/) });
    await huge.close();
    const extra = await scriptedServer((socket) => socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nnot found'));
    expect(await failure(pool.get(extra.url, '/', {}, undefined, 1000, never))).toMatchObject({ code: 'BadBody' });
    pool.close();
    await extra.close();
  });

  it('fails with the caller\'s cancel reason, not a ConnectionError', async () => {
    const server = await scriptedServer(() => undefined);
    const pool = new RawHttpPool(4);
    const cancelled = new Error('the reader went away');
    const cancel = Promise.reject(cancelled);
    cancel.catch(() => undefined);
    await expect(pool.get(server.url, '/', {}, undefined, 1000, cancel)).rejects.toBe(cancelled);
    pool.close();
    await server.close();
  });
});
