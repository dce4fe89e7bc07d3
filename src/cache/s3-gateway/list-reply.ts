// The XML the S3 gateway answers listings and GetBucketLocation with, element for element what S3 sends, from a
// page of the origin's listing; and how a version 1 listing (marker, NextMarker) maps onto the origin's start-after.
import { commonPrefixOf, compareKeys } from '../../objectstore/listing';
import { uriEncode } from '../../objectstore/sigv4';
import type { ListOptions, ListPage, ObjectInfo } from '../../objectstore/store';
import { MAX_KEY_BYTES } from '../../objectstore/validate';
import { escapeXml, S3Error } from './error-reply';
import type { ListObjectsRequest, ListObjectsV2Request } from './s3-request';

const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';
const NAMESPACE = 'http://s3.amazonaws.com/doc/2006-03-01/';
/** The region whose LocationConstraint is empty: S3's oldest, the default of every client. */
const US_EAST_1 = 'us-east-1';

/** The ListObjectsV2 reply (ListBucketResult) for `page`, the origin's answer to `request`. */
export function listObjectsV2Xml(request: ListObjectsV2Request, page: ListPage): string {
  const key = keyText(request.encodingType);
  return (
    `${DECLARATION}<ListBucketResult xmlns="${NAMESPACE}">` +
    element('Name', escapeXml(request.bucket)) +
    element('Prefix', key(request.prefix)) +
    // The continuation tokens are opaque: never URL-encoded, a client sends them back as they came.
    optionalElement('ContinuationToken', request.continuationToken, escapeXml) +
    optionalElement('NextContinuationToken', page.nextToken, escapeXml) +
    optionalElement('StartAfter', request.startAfter, key) +
    element('KeyCount', String(page.objects.length + page.commonPrefixes.length)) +
    element('MaxKeys', String(request.maxKeys)) +
    optionalElement('Delimiter', request.delimiter, key) +
    optionalElement('EncodingType', request.encodingType, escapeXml) +
    element('IsTruncated', String(page.nextToken !== undefined)) +
    entries(page, key) +
    '</ListBucketResult>'
  );
}

/**
 * The ListObjects (version 1) reply for `page`, the origin's answer to originListOptionsForV1(request). When the page
 * is truncated, NextMarker is its last key or common prefix, with or without a delimiter (S3 gives it only with one,
 * but clients take it whenever it is there, and rclone falls back to the last key, which skips a trailing common
 * prefix's roll-up). Throws InternalError for a truncated page without an entry: it gives no marker to go on from.
 */
export function listObjectsV1Xml(request: ListObjectsRequest, page: ListPage): string {
  const key = keyText(request.encodingType);
  const truncated = page.nextToken !== undefined;
  return (
    `${DECLARATION}<ListBucketResult xmlns="${NAMESPACE}">` +
    element('Name', escapeXml(request.bucket)) +
    element('Prefix', key(request.prefix)) +
    element('Marker', key(request.marker ?? '')) +
    (truncated ? element('NextMarker', key(lastEntryOf(page))) : '') +
    element('MaxKeys', String(request.maxKeys)) +
    optionalElement('Delimiter', request.delimiter, key) +
    optionalElement('EncodingType', request.encodingType, escapeXml) +
    element('IsTruncated', String(truncated)) +
    entries(page, key) +
    '</ListBucketResult>'
  );
}

/**
 * What to ask the origin for a version 1 listing: its prefix, delimiter and page size, and its marker as the
 * start-after. A marker that is a common prefix (`a/` with the delimiter `/`, the NextMarker of a page that ended
 * on it) becomes the greatest key under it, lastKeyUnder(marker): start-after `a/` itself would list `a/1` again,
 * which rolls up into `a/` again, and a client paging one entry at a time would never get past it. A max-keys of 0
 * is passed on as it is: the origin refuses it, so the server answers it with an empty page without asking.
 */
export function originListOptionsForV1(request: ListObjectsRequest): ListOptions {
  const { prefix, delimiter, marker, maxKeys } = request;
  const options: ListOptions = { prefix, maxKeys };
  if (delimiter !== undefined) options.delimiter = delimiter;
  if (marker !== undefined) options.startAfter = commonPrefixOf(marker, prefix, delimiter) === marker ? lastKeyUnder(marker) : marker;
  return options;
}

/**
 * The greatest key S3 could hold that starts with `prefix`: the prefix filled up to MAX_KEY_BYTES with the greatest
 * code point, U+10FFFF (UTF-8 F4 8F BF BF, the greatest 4-byte sequence), the last 1 to 3 bytes with the greatest
 * code point of that length (U+007F, U+07FF, U+FFFF). S3 orders keys by their UTF-8 bytes, and UTF-8 orders as the
 * code points do, so every key of at most MAX_KEY_BYTES that starts with `prefix` sorts at or before it, and every
 * key after `prefix` that does not start with it sorts after it. One U+10FFFF alone would not do: a key may
 * continue with U+10FFFF, and a client paging one entry at a time would then never get past the common prefix.
 */
export function lastKeyUnder(prefix: string): string {
  const room = MAX_KEY_BYTES - Buffer.byteLength(prefix);
  if (room <= 0) return prefix;
  return prefix + '\u{10FFFF}'.repeat(Math.floor(room / 4)) + ['', '\u007F', '\u07FF', '\uFFFF'][room % 4];
}

/** The GetBucketLocation reply: the region, or an empty LocationConstraint for us-east-1, as S3 answers. */
export function bucketLocationXml(region: string): string {
  const open = `${DECLARATION}<LocationConstraint xmlns="${NAMESPACE}"`;
  return region === US_EAST_1 ? `${open}/>` : `${open}>${escapeXml(region)}</LocationConstraint>`;
}

/** Contents for each object, then CommonPrefixes for each common prefix, S3's order. */
function entries(page: ListPage, key: (text: string) => string): string {
  return page.objects.map((object) => contents(object, key)).join('') + page.commonPrefixes.map((prefix) => element('CommonPrefixes', element('Prefix', key(prefix)))).join('');
}

function contents(object: ObjectInfo, key: (text: string) => string): string {
  return element(
    'Contents',
    element('Key', key(object.key)) +
      element('LastModified', object.lastModified.toISOString()) +
      element('ETag', escapeXml(`"${object.etag}"`)) +
      element('Size', String(object.size)) +
      element('StorageClass', 'STANDARD'),
  );
}

/** The last entry of a truncated page: its greatest key or common prefix. */
function lastEntryOf(page: ListPage): string {
  const candidates = [page.objects.at(-1)?.key, page.commonPrefixes.at(-1)].filter((entry) => entry !== undefined);
  const last = candidates.sort(compareKeys).at(-1);
  if (last === undefined) throw new S3Error('InternalError', 'the origin answered a truncated listing page without an entry, which gives no NextMarker to go on from: retry the listing');
  return last;
}

function element(name: string, xmlText: string): string {
  return `<${name}>${xmlText}</${name}>`;
}

function optionalElement(name: string, value: string | undefined, text: (value: string) => string): string {
  return value === undefined ? '' : element(name, text(value));
}

/**
 * How a key, a prefix, a marker or a delimiter is written: URL-encoded when the client asked for encoding-type=url,
 * else as XML text keeping every character.
 *
 * URL encoding: each UTF-8 byte percent-encoded but the unreserved A-Z a-z 0-9 - . _ ~ and '/' (SigV4's URI
 * encoding of a path), so a space is %20 and '+' is %2B. Decoders differ on '+': botocore unquotes with
 * urllib.parse.unquote_plus, rclone with Go's url.QueryUnescape and the Java SDK with URLDecoder, all of which read
 * '+' as a space, while the JS SDK gives the text as it is and its users decodeURIComponent it. Never writing a bare
 * '+' makes every one of them read the key back exactly. S3 itself keeps '/', encodes '(' and ')' (its
 * documentation's test_file(3).png is test_file%283%29.png) and has been seen writing a space as '+': %20 reads
 * back as a space under every decoder above, and under a plain unquote too, which '+' would not.
 */
function keyText(encodingType: 'url' | undefined): (text: string) => string {
  if (encodingType === 'url') return (text) => wellFormed(text).split('/').map(uriEncode).join('/');
  return xmlTextKeepingCharacters;
}

/**
 * Characters that XML 1.0 text cannot hold as they are, and that S3 writes as character references, so that a
 * key comes back exactly from lenient parsers (the JS SDK's): controls (strict parsers, Go's and Java's, refuse
 * those, which is rclone's signal to list again with encoding-type=url), U+FFFE and U+FFFF, and carriage return,
 * which every parser would otherwise read as a line feed. (A lone surrogate, which no UTF-8 key holds, is left to
 * escapeXml, which makes it U+FFFD.)
 */
const NEEDS_REFERENCE = /([^\t\n\u0020-\uD7FF\uD800-\uDFFF\uE000-\uFFFD\u{10000}-\u{10FFFF}])/u;

function xmlTextKeepingCharacters(text: string): string {
  return text
    .split(NEEDS_REFERENCE)
    .map((part, index) => (index % 2 === 1 ? `&#x${(part.codePointAt(0) ?? 0).toString(16).toUpperCase()};` : escapeXml(part)))
    .join('');
}

/** `text` with any lone surrogate (no UTF-8 key holds one) made U+FFFD, so that it can be URL-encoded. */
function wellFormed(text: string): string {
  return text.replace(/\p{Surrogate}/gu, '\uFFFD');
}
