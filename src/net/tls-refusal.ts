// What a failed TLS handshake says, told apart from a network failure during it. Node reports TLS's own refusals
// with a code that is no socket errno: OpenSSL's (ERR_SSL_*, with a terse `reason`), the X.509 verdict on the
// server's certificate (DEPTH_ZERO_SELF_SIGNED_CERT, CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE...), or
// ERR_TLS_CERT_ALTNAME_INVALID; a reset or refused connection during the handshake keeps its errno (ECONNRESET).
import { constants } from 'node:os';

/** Whether `error`, which broke a connection during its TLS handshake, is TLS refusing the peer rather than the network failing. */
export function isTlsRefusal(error: NodeJS.ErrnoException | undefined): boolean {
  const code = error?.code;
  return typeof code === 'string' && !(code in constants.errno);
}

/** The message of a TLS refusal by its code: what was refused, why, and the next step. */
export function tlsRefusalMessage(peer: string, error: NodeJS.ErrnoException): string {
  const code = error.code ?? '';
  if (code.startsWith('ERR_SSL_')) {
    // OpenSSL's message is its whole error queue line; its reason is the part a reader needs.
    const reason = (error as { reason?: unknown }).reason;
    return `the TLS handshake with ${peer} failed: ${typeof reason === 'string' ? reason : error.message} (${code}); check that ${peer} serves https on that port`;
  }
  const next = code === 'ERR_TLS_CERT_ALTNAME_INVALID'
    ? 'the endpoint must name a host the certificate is for'
    : 'if a private CA signed it, put that CA\'s certificate in the file NODE_EXTRA_CA_CERTS names';
  return `${peer}'s TLS certificate was refused: ${error.message} (${code}); ${next}`;
}
