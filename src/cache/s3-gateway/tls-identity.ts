// The S3 API's certificate and key, read from the files of a mounted kubernetes.io/tls Secret and checked to load
// together before they are used, so that a wrong pair is refused at start (or kept out at a rotation) with the reason.
import { promises as fs } from 'node:fs';
import * as tls from 'node:tls';
import type { Logger } from '../../log/logger';
import type { TlsIdentity } from '../bounded-http';
import { ReloadingFiles } from './reloading-files';

/** Reads one PEM file; throws what to fix (the path and errno, never the contents). */
async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new Error(`cannot read the S3 API ${what} ${file} (${code}): mount the TLS Secret there (chart cache.s3Gateway.tls.existingSecret), or pass the right file`, { cause: error });
  }
}

/** The certificate chain and key in `certFile` and `keyFile`, checked to load as a pair; throws what to fix. */
export async function readTlsIdentity(certFile: string, keyFile: string): Promise<TlsIdentity> {
  const [cert, key] = await Promise.all([readPem(certFile, 'certificate'), readPem(keyFile, 'private key')]);
  try {
    tls.createSecureContext({ cert, key });
  } catch (error) {
    // OpenSSL's reason names the problem (no PEM, a key that does not match the certificate), not the key's bytes.
    throw new Error(`the S3 API certificate ${certFile} and key ${keyFile} do not load as a pair: ${(error as Error).message}; give the PEM certificate chain and its own private key`, { cause: error });
  }
  return { cert, key };
}

/** The S3 API's certificate and key, read now (throws what to fix) and again when the Secret's files change; `onChange` hears each new pair. */
export function openTlsIdentity(certFile: string, keyFile: string, onChange: (identity: TlsIdentity) => void, logger: Logger): Promise<ReloadingFiles<TlsIdentity>> {
  return ReloadingFiles.open({
    files: [certFile, keyFile],
    read: () => readTlsIdentity(certFile, keyFile),
    what: 'the S3 API certificate',
    describe: () => ({}),
    onChange,
    logger,
  });
}
