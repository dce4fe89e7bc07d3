import type { ListOptions } from './store';
import { pageSize } from './validate';

/** Orders keys as S3 does: by their UTF-8 bytes (differs from `<` on strings only beyond the BMP). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The common prefix `key` rolls up into under `prefix` with `delimiter`, or undefined when it is listed as itself. */
export function commonPrefixOf(key: string, prefix: string, delimiter: string | undefined): string | undefined {
  if (!delimiter || !key.startsWith(prefix)) return undefined;
  const at = key.indexOf(delimiter, prefix.length);
  return at < 0 ? undefined : key.slice(0, at + delimiter.length);
}

/** One page built from a listing source, before the store fills in object details. */
export interface KeyPage<Entry> {
  objects: Entry[];
  commonPrefixes: string[];
  nextToken?: string;
}

/**
 * Builds one list page from entries in key order, as S3's ListObjectsV2 does: keys under the prefix after the
 * continuation token (the last key or common prefix of the previous page), rolled up by delimiter, at most maxKeys.
 */
export async function collectPage<Entry extends { key: string }>(
  entries: AsyncIterable<Entry> | Iterable<Entry>,
  options: ListOptions,
): Promise<KeyPage<Entry>> {
  const limit = pageSize(options);
  const { prefix, delimiter, continuationToken: token } = options;
  const tokenIsCommonPrefix = token !== undefined && commonPrefixOf(token, prefix, delimiter) === token;
  const after = token === undefined ? options.startAfter : undefined;
  const page: KeyPage<Entry> = { objects: [], commonPrefixes: [] };
  let count = 0;
  let last: string | undefined;
  for await (const entry of entries) {
    if (!entry.key.startsWith(prefix)) continue;
    if (token !== undefined && (compareKeys(entry.key, token) <= 0 || (tokenIsCommonPrefix && entry.key.startsWith(token)))) continue;
    if (after !== undefined && compareKeys(entry.key, after) <= 0) continue;
    const common = commonPrefixOf(entry.key, prefix, delimiter);
    if (common !== undefined && common === last) continue;
    if (count === limit) return { ...page, nextToken: last };
    if (common !== undefined) page.commonPrefixes.push(common);
    else page.objects.push(entry);
    last = common ?? entry.key;
    count += 1;
  }
  return page;
}
