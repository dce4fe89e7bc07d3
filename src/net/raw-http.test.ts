import * as net from 'node:net';
import { KEEP_ALIVE_MARGIN_MS, RawHttpPool } from './raw-http';

/** A raw TCP server that answers each request with `response`, written in pieces of `piece` bytes. */
async function rawServer(response: Buffer, piece: number): Promise<{ url: URL; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', async () => {
      for (let offset = 0; offset < response.length; offset += piece) {
        socket.write(response.subarray(offset, offset + piece));
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
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

const never = new Promise<never>(() => undefined);

/**
 * An HTTP/1.1 server over raw TCP that answers every request with `head` and a 2-byte body, counting its
 * connections; once `staleAfter` is set, a request on a connection that has served before is met with a
 * close and no answer (what a client sees when the server's idle timeout fires as its request goes out).
 */
async function keepAliveServer(head = ''): Promise<{ url: URL; connections: () => number; makeStale: () => void; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const served = new WeakSet<net.Socket>();
  let connections = 0;
  let stale = false;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', () => {
      if (stale && served.has(socket)) {
        socket.destroy();
        return;
      }
      served.add(socket);
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n${head}\r\nok`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: new URL(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`),
    connections: () => connections,
    makeStale: () => (stale = true),
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

describe('RawHttpPool', () => {
  it('reads a head split over many reads and a body into the given buffer, byte by byte', async () => {
    const body = Buffer.from('granary block bytes');
    const server = await rawServer(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nX-Granary-Source: disk\r\n\r\n`), body]), 1);
    const pool = new RawHttpPool(4);
    const into = Buffer.alloc(body.length);
    const response = await pool.get(server.url, '/v1/block', {}, into, 1000, never);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-granary-source')).toBe('disk');
    expect(response.body).toBe(into);
    expect(into.equals(body)).toBe(true);
    pool.close();
    await server.close();
  });

  it('refuses a 2xx body whose length is not the buffer size, and a head that is not HTTP', async () => {
    const wrong = await rawServer(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc'), 64);
    const pool = new RawHttpPool(4);
    await expect(pool.get(wrong.url, '/', {}, Buffer.alloc(5), 1000, never)).rejects.toThrow(/3 bytes for a 5-byte range/);
    await wrong.close();
    const garbage = await rawServer(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'), 64);
    await expect(pool.get(garbage.url, '/', {}, Buffer.alloc(5), 1000, never)).rejects.toThrow(/not HTTP\/1\.1/);
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
    pool.close();
    await new Promise((resolve) => server.close(resolve));
  });
});
