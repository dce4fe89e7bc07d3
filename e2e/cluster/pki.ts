import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { run } from './exec';

/** A client or serving identity signed by the run's CA. */
export interface CertificateRequest {
  /** The file stem: NAME.crt and NAME.key. */
  readonly name: string;
  /** The subject's CN (the user name Kubernetes sees). */
  readonly commonName: string;
  /** The subject's O (the groups Kubernetes sees). */
  readonly organization?: string;
  /** Subject alternative names for a serving certificate ("IP:10.0.0.1", "DNS:kubernetes"). */
  readonly altNames?: readonly string[];
}

/** The files of a run's PKI. */
export interface Pki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  /** The service-account signing key (private) and its public half for the API server. */
  readonly serviceAccountKey: string;
  readonly serviceAccountPub: string;
  cert(name: string): { readonly cert: string; readonly key: string };
}

const VALID_DAYS = '2';

/**
 * Makes a fresh CA, the given certificates and a service-account key pair with openssl in dir, so
 * no run trusts another's keys. EC P-256 keys: quick to make on a busy machine, accepted by every
 * Kubernetes component and by service-account signing (ES256).
 */
export async function createPki(dir: string, requests: readonly CertificateRequest[]): Promise<Pki> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = (name: string): string => path.join(dir, name);
  const newKey = (out: string): Promise<unknown> => run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', out]);

  await newKey(file('ca.key'));
  await run('openssl', ['req', '-x509', '-new', '-key', file('ca.key'), '-subj', '/CN=granary-cluster-ca', '-days', VALID_DAYS,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', file('ca.crt')]);
  await newKey(file('service-account.key'));
  await run('openssl', ['ec', '-in', file('service-account.key'), '-pubout', '-out', file('service-account.pub')]);

  for (const request of requests) {
    const key = file(`${request.name}.key`);
    const csr = file(`${request.name}.csr`);
    const ext = file(`${request.name}.ext`);
    await newKey(key);
    const subject = `/CN=${request.commonName}${request.organization ? `/O=${request.organization}` : ''}`;
    await run('openssl', ['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
    const extensions = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${request.altNames ? 'serverAuth,clientAuth' : 'clientAuth'}`,
      ...(request.altNames ? [`subjectAltName=${request.altNames.join(',')}`] : []),
    ];
    await fs.writeFile(ext, `${extensions.join('\n')}\n`);
    await run('openssl', ['x509', '-req', '-in', csr, '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
      '-days', VALID_DAYS, '-extfile', ext, '-out', file(`${request.name}.crt`)]);
  }
  return {
    dir,
    caCert: file('ca.crt'),
    caKey: file('ca.key'),
    serviceAccountKey: file('service-account.key'),
    serviceAccountPub: file('service-account.pub'),
    cert: (name) => ({ cert: file(`${name}.crt`), key: file(`${name}.key`) }),
  };
}

/** A kubeconfig (JSON, which kubectl and client-go read as YAML) for a certificate identity. */
export function kubeconfig(server: string, caCert: string, identity: { cert: string; key: string }, user: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'granary', cluster: { server, 'certificate-authority': caCert } }],
    users: [{ name: user, user: { 'client-certificate': identity.cert, 'client-key': identity.key } }],
    contexts: [{ name: 'granary', context: { cluster: 'granary', user } }],
    'current-context': 'granary',
  }, null, 2);
}
