import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { Counter, Registry } from 'prom-client';
import { selfSignedCertificate, type SelfSignedCertificate } from '../../../e2e/support/self-signed';
import { createLogger } from '../../log/logger';
import { BoundedHttpServer } from '../bounded-http';
import { openTlsIdentity, readTlsIdentity } from './tls-identity';

const LIMITS = { headersTimeoutMs: 2000, requestTimeoutMs: 5000, idleTimeoutMs: 1000, maxConnections: 10, maxConnectionsPerAddress: 10, maxHeaderBytes: 16384 };

describe('the S3 API certificate', () => {
  let dir: string;
  let first: SelfSignedCertificate;
  let second: SelfSignedCertificate;
  let lines: string[];
  const logger = () => createLogger({ format: 'json', level: 'info', name: 'test', destination: { write: (line) => void lines.push(line) } });

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-tls-'));
    first = selfSignedCertificate(fs.mkdtempSync(path.join(dir, 'a-')));
    second = selfSignedCertificate(fs.mkdtempSync(path.join(dir, 'b-')));
  });
  beforeEach(() => {
    lines = [];
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads a certificate and its key, and refuses a key of another certificate or a missing file, saying what to fix without the key', async () => {
    await expect(readTlsIdentity(first.certFile, first.keyFile)).resolves.toEqual({ cert: Buffer.from(first.cert), key: Buffer.from(first.key) });
    const mismatch = await readTlsIdentity(first.certFile, second.keyFile).then(() => undefined, (error: Error) => error.message);
    expect(mismatch).toMatch(new RegExp(`^the S3 API certificate ${first.certFile} and key ${second.keyFile} do not load as a pair: .*mismatch.*; give the PEM certificate chain and its own private key$`));
    expect(mismatch).not.toContain(second.key.split('\n')[1]);
    await expect(readTlsIdentity(path.join(dir, 'absent.pem'), first.keyFile)).rejects.toThrow(/^cannot read the S3 API certificate .*absent\.pem \(ENOENT\): mount the TLS Secret there/);
  });

  it('serves new connections with a rotated certificate once its files change, and keeps the old one when the new pair does not load', async () => {
    const live = fs.mkdtempSync(path.join(dir, 'live-'));
    const [certFile, keyFile] = [path.join(live, 'tls.crt'), path.join(live, 'tls.key')];
    /** Writes a pair as the kubelet updates a Secret: new files renamed over the old ones. */
    const install = (cert: string, key: string) => {
      fs.writeFileSync(`${certFile}.new`, cert);
      fs.writeFileSync(`${keyFile}.new`, key);
      fs.renameSync(`${certFile}.new`, certFile);
      fs.renameSync(`${keyFile}.new`, keyFile);
    };
    install(first.cert, first.key);
    // The server is made after the reloader that rotates its certificate.
    const serving: { server?: BoundedHttpServer } = {};
    // Checked by hand below (identity.check()); its own timer runs every 30 s, beyond this test.
    const identity = await openTlsIdentity(certFile, keyFile, (next) => serving.server?.setIdentity(next), logger());
    const registry = new Registry();
    const server = new BoundedHttpServer({
      limits: LIMITS,
      handle: (_request, response) => response.end('ok'),
      faultBody: () => ({ contentType: 'text/plain', body: 'fault' }),
      refusals: { counter: new Counter({ name: 'refused_total', help: 'refused', labelNames: ['cap'], registers: [registry] }), metricName: 'refused_total', logger: logger() },
      tls: identity.current,
    });
    serving.server = server;
    const { port } = await server.listen('127.0.0.1', 0);
    const fetchTrusting = (ca: string) =>
      new Promise<string>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port, path: '/', ca, agent: false }, (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString()));
          response.on('end', () => resolve(body));
        }).on('error', reject);
      });
    try {
      await expect(fetchTrusting(first.cert)).resolves.toBe('ok');
      install(second.cert, second.key);
      await identity.check();
      await expect(fetchTrusting(second.cert)).resolves.toBe('ok');
      await expect(fetchTrusting(first.cert)).rejects.toThrow(/self[- ]signed/i);
      install(first.cert, second.key);
      await identity.check();
      await expect(fetchTrusting(second.cert)).resolves.toBe('ok');
      expect(lines.join('')).toMatch(/the S3 API certificate changed but cannot be used; what was read before stays in force/);
    } finally {
      identity.close();
      await server.close();
    }
  });
});
