// A self-signed TLS certificate made on the spot with openssl, for https servers in tests and the bench: nothing
// private is checked in, and a certificate made for the run cannot expire between runs.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** Where openssl is expected (Debian's openssl package). */
const OPENSSL = '/usr/bin/openssl';

/** A certificate and its key, as files and as PEM text. */
export interface SelfSignedCertificate {
  certFile: string;
  keyFile: string;
  /** The certificate in PEM: trusting it (as a CA) trusts the server that presents it. */
  cert: string;
  key: string;
}

/**
 * Makes a self-signed certificate (RSA 2048, valid one day) for `names`, host names or IP addresses, the first one
 * its CN, all of them in its subjectAltName, and writes cert.pem and key.pem (mode 0600) into `dir`.
 */
export function selfSignedCertificate(dir: string, names: readonly string[] = ['127.0.0.1', 'localhost']): SelfSignedCertificate {
  if (!fs.existsSync(OPENSSL)) throw new Error(`${OPENSSL} is missing: it makes the test certificates (apt-get install openssl)`);
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const altNames = names.map((name) => (net.isIP(name) ? `IP:${name}` : `DNS:${name}`)).join(',');
  execFileSync(OPENSSL, [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-keyout', keyFile, '-out', certFile,
    '-subj', `/CN=${names[0] ?? 'localhost'}`, '-addext', `subjectAltName=${altNames}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  fs.chmodSync(keyFile, 0o600);
  return { certFile, keyFile, cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
}
