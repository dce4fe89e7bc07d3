// The cluster token: the shared secret every cache request carries, read from a file (a mounted Secret).
import { promises as fs } from 'node:fs';

/** The shortest token accepted: 16 characters (the chart generates 32 random ones). */
export const MIN_TOKEN_LENGTH = 16;

/**
 * Reads the cluster token from `file` (surrounding whitespace trimmed). Throws an Error that names the file,
 * never the token, when it cannot be read or is too short.
 */
export async function readTokenFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`cannot read the cache token file ${file} (${code}): mount the cluster token Secret there, or pass the right file to --token-file (cache serve) or --cache-token-file (mount, warmup, csi)`, { cause: error });
  }
  const token = text.trim();
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new Error(`the cache token in ${file} is ${token.length} characters long; use at least ${MIN_TOKEN_LENGTH} (for example: head -c 32 /dev/urandom | base64)`);
  }
  if (/\s/.test(token)) throw new Error(`the cache token in ${file} contains whitespace inside it; use one line without spaces`);
  return token;
}
