import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { selfSignedCertificate, type SelfSignedCertificate } from '../../e2e/support/self-signed';
import { ConnectionError } from './errors';
import { RawHttpPool } from './raw-http';

const never = new Promise<never>(() => undefined);

let dir: string;
/** The certificate of 127.0.0.1 and localhost that the servers below present. */
let certificate: SelfSignedCertificate;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-raw-tls-'));
  certificate = selfSignedCertificate(dir);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * An https server on 127.0.0.1:0 presenting `presented` (default: the certificate above), answering every request
 * with `response` written in pieces of `piece` bytes (one TLS record each), and counting its TLS connections.
 */
async function httpsServer(response: Buffer, piece: number, presented = certificate): Promise<{ url: URL; connections: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = tls.createServer({ cert: presented.cert, key: presented.key }, (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', async () => {
      for (let offset = 0; offset < response.length; offset += piece) {
        socket.write(response.subarray(offset, offset + piece));
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
  });
  // A client that refuses the certificate ends the handshake: not the server's error to report.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: new URL(`https://127.0.0.1:${(server.address() as net.AddressInfo).port}`),
    connections: () => connections,
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

function answer(body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nETag: "e"\r\n\r\n`), body]);
}

/** The error `promise` rejects with, which must be a ConnectionError. */
async function failure(promise: Promise<unknown>): Promise<ConnectionError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!(error instanceof ConnectionError)) throw new Error(`expected a ConnectionError, got ${String(error)}`);
  return error;
}

describe('RawHttpPool over TLS', () => {
  it('reads a body straight into the given buffer, over many TLS records and over one, and reuses the connection', async () => {
    const body = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 7) % 256));
    const server = await httpsServer(answer(body), 1 << 20);
    const pool = new RawHttpPool(4, { ca: certificate.cert });
    try {
      for (let i = 0; i < 3; i++) {
        const into = Buffer.alloc(body.length);
        const response = await pool.get(server.url, '/bucket/key', {}, into, 5000, never);
        expect(response.status).toBe(200);
        expect(response.headers.get('etag')).toBe('"e"');
        expect(response.body).toBe(into);
        expect(into.equals(body)).toBe(true);
      }
      expect(server.connections()).toBe(1);
    } finally {
      pool.close();
      await server.close();
    }
    const small = Buffer.from('granary block bytes');
    const trickle = await httpsServer(answer(small), 1);
    const byteByByte = new RawHttpPool(4, { ca: certificate.cert });
    try {
      const into = Buffer.alloc(small.length);
      await byteByByte.get(trickle.url, '/', {}, into, 5000, never);
      expect(into.toString()).toBe('granary block bytes');
    } finally {
      byteByByte.close();
      await trickle.close();
    }
  });

  it('keeps http and https connections to the same host and port apart', async () => {
    const server = await httpsServer(answer(Buffer.from('ok')), 64);
    const pool = new RawHttpPool(4, { ca: certificate.cert });
    try {
      await pool.get(server.url, '/', {}, undefined, 5000, never);
      const plain = new URL(server.url.href.replace('https:', 'http:'));
      // The idle TLS connection is not taken for http: a fresh plain one speaks HTTP into a TLS server, which hangs up.
      await expect(pool.get(plain, '/', {}, undefined, 5000, never)).rejects.toBeInstanceOf(ConnectionError);
      expect((await pool.get(server.url, '/', {}, undefined, 5000, never)).status).toBe(200);
      expect(server.connections()).toBe(1);
    } finally {
      pool.close();
      await server.close();
    }
  });

  it('refuses a certificate it does not trust, once, with TLS\'s reason and the next step', async () => {
    const server = await httpsServer(answer(Buffer.from('ok')), 64);
    const pool = new RawHttpPool(4);
    try {
      const error = await failure(pool.get(server.url, '/', {}, Buffer.alloc(2), 5000, never));
      expect(error).toMatchObject({ code: 'TlsRefused', reused: false, cause: expect.objectContaining({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }) });
      expect(error.message).toBe(`${server.url.host}'s TLS certificate was refused: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT); if a private CA signed it, put that CA's certificate in the file NODE_EXTRA_CA_CERTS names`);
      expect(server.connections()).toBe(0);
    } finally {
      pool.close();
      await server.close();
    }
  });

  it('refuses a certificate for another host, and a port that does not speak TLS', async () => {
    const other = selfSignedCertificate(fs.mkdtempSync(path.join(dir, 'other-')), ['granary.test']);
    const server = await httpsServer(answer(Buffer.from('ok')), 64, other);
    const pool = new RawHttpPool(4, { ca: other.cert });
    try {
      const error = await failure(pool.get(server.url, '/', {}, undefined, 5000, never));
      expect(error).toMatchObject({ code: 'TlsRefused', message: expect.stringMatching(/IP: 127\.0\.0\.1 is not in the cert's list.*ERR_TLS_CERT_ALTNAME_INVALID.*the endpoint must name a host the certificate is for/) });
    } finally {
      await server.close();
    }
    const plain = net.createServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const url = new URL(`https://127.0.0.1:${(plain.address() as net.AddressInfo).port}`);
    try {
      const error = await failure(pool.get(url, '/', {}, undefined, 5000, never));
      expect(error).toMatchObject({ code: 'TlsRefused', message: `the TLS handshake with ${url.host} failed: wrong version number (ERR_SSL_WRONG_VERSION_NUMBER); check that ${url.host} serves https on that port` });
    } finally {
      pool.close();
      await new Promise((resolve) => plain.close(resolve));
    }
  });

  it('ConnectTimeout when the TLS handshake does not finish within the connect timeout', async () => {
    // It reads (and drops) the ClientHello, and never answers.
    const silent = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const pool = new RawHttpPool(4, { connectTimeoutMs: 100, ca: certificate.cert });
    try {
      const error = await failure(pool.get(new URL(`https://127.0.0.1:${(silent.address() as net.AddressInfo).port}`), '/', {}, undefined, 10_000, never));
      expect(error).toMatchObject({ code: 'ConnectTimeout', message: expect.stringMatching(/did not open within 100 ms/) });
    } finally {
      pool.close();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('trusts the CAs of NODE_EXTRA_CA_CERTS, as node:https does', async () => {
    const server = await httpsServer(answer(Buffer.from('trusted')), 64);
    try {
      // NODE_EXTRA_CA_CERTS is read when a process starts: the pool runs in a child, its TypeScript compiled as it loads.
      const script = `
        const fs = require('node:fs');
        const ts = require(${JSON.stringify(require.resolve('typescript'))});
        require.extensions['.ts'] = (module, file) => module._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText, file);
        const { RawHttpPool } = require(${JSON.stringify(path.join(__dirname, 'raw-http.ts'))});
        const pool = new RawHttpPool(1);
        pool.get(new URL(process.argv[1]), '/', {}, undefined, 5000, new Promise(() => {})).then(
          (response) => { process.stdout.write(response.status + ' ' + response.body.toString()); pool.close(); },
          (error) => { process.stdout.write(error.code + ': ' + error.message); pool.close(); });`;
      const run = async (env: NodeJS.ProcessEnv): Promise<string> => {
        const child = spawn(process.execPath, ['-e', script, server.url.href], { env, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (data: Buffer) => (out += data.toString()));
        await once(child, 'close');
        return out;
      };
      const { NODE_EXTRA_CA_CERTS: _inherited, ...env } = process.env;
      expect(await run({ ...env, NODE_EXTRA_CA_CERTS: certificate.certFile })).toBe('200 trusted');
      expect(await run(env)).toMatch(/^TlsRefused: /);
    } finally {
      await server.close();
    }
    // Two Node processes compiling TypeScript: well under a second on a quiet machine, much longer on a loaded one.
  }, 60_000);
});
