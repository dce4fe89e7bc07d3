// The ListObjectsV2 request's query and its answer's XML, for the lean listing (src/objectstore/s3-get.ts).
//
// Why not the SDK: its schema-driven deserializer spent ~100 µs of the mount's one thread per listed object
// (profiled while reading 2,000 files in 20 folders: a quarter of a second per 2,000 entries); a listing page
// needs six fields of a fixed, flat document, which a scanner reads in a few microseconds each.
import { uriEncode } from './sigv4';
import type { ListOptions, ListPage } from './store';

/** The largest page S3 returns, the default of max-keys. */
const MAX_PAGE_KEYS = 1000;

/** The canonical (sorted, encoded) query string of one ListObjectsV2 page: also the query sent. */
export function listQuery(options: ListOptions): string {
  const parameters: Array<[string, string]> = [['list-type', '2'], ['max-keys', String(options.maxKeys ?? MAX_PAGE_KEYS)], ['prefix', options.prefix]];
  if (options.delimiter) parameters.push(['delimiter', options.delimiter]);
  if (options.continuationToken) parameters.push(['continuation-token', options.continuationToken]);
  else if (options.startAfter) parameters.push(['start-after', options.startAfter]);
  return parameters
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${uriEncode(name)}=${uriEncode(value)}`)
    .join('&');
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Text of an XML element with its entity and character references resolved. */
export function decodeXmlText(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, name: string) => {
    if (name.startsWith('#x')) return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (name.startsWith('#')) return String.fromCodePoint(Number(name.slice(1)));
    return ENTITIES[name] ?? whole;
  });
}

/** The text of the first `<tag>` in xml[from, to), or undefined. */
function field(xml: string, tag: string, from: number, to: number): string | undefined {
  const open = xml.indexOf(`<${tag}>`, from);
  if (open < 0 || open >= to) {
    // An empty element may be written self-closed.
    const empty = xml.indexOf(`<${tag}/>`, from);
    return empty >= 0 && empty < to ? '' : undefined;
  }
  const start = open + tag.length + 2;
  const close = xml.indexOf(`</${tag}>`, start);
  if (close < 0 || close > to) return undefined;
  return decodeXmlText(xml.slice(start, close));
}

/** Each [start, end) of the `<tag>…</tag>` elements directly in the document, in order. */
function* elements(xml: string, tag: string): Generator<[number, number]> {
  const open = `<${tag}>`;
  const close = `</${tag}>`;
  for (let at = xml.indexOf(open); at >= 0; ) {
    const end = xml.indexOf(close, at);
    if (end < 0) throw new Error(`the listing's XML has a <${tag}> that does not end`);
    yield [at + open.length, end];
    at = xml.indexOf(open, end + close.length);
  }
}

/** Reads one ListObjectsV2 answer (a ListBucketResult document) into a ListPage. */
export function parseListPage(xml: string): ListPage {
  if (!xml.includes('<ListBucketResult')) throw new Error(`the answer is not a ListBucketResult: ${JSON.stringify(xml.slice(0, 80))}`);
  const page: ListPage = { objects: [], commonPrefixes: [] };
  for (const [start, end] of elements(xml, 'Contents')) {
    const key = field(xml, 'Key', start, end);
    if (key === undefined) throw new Error('the listing holds an object without a <Key>');
    const size = Number(field(xml, 'Size', start, end) ?? 0);
    const modified = field(xml, 'LastModified', start, end);
    page.objects.push({
      key,
      size: Number.isFinite(size) ? size : 0,
      etag: (field(xml, 'ETag', start, end) ?? '').replace(/^"|"$/g, ''),
      lastModified: modified ? new Date(modified) : new Date(0),
    });
  }
  for (const [start, end] of elements(xml, 'CommonPrefixes')) page.commonPrefixes.push(field(xml, 'Prefix', start, end) ?? '');
  // The document's own elements come after (or between) the entries: look for them outside every entry.
  const truncated = /<IsTruncated>\s*true\s*<\/IsTruncated>/.test(xml);
  const token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
  if (truncated && token) page.nextToken = decodeXmlText(token);
  return page;
}
