import * as net from 'node:net';
import { RawHttpPool } from './raw-http';

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
