import { createHash, randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ObjectStoreError, isObjectStoreError } from './errors';
import { collectPage, commonPrefixOf, compareKeys } from './listing';
import type {
  ByteRange, GetOptions, GetResult, ListOptions, ListPage, MultipartUpload, ObjectInfo, ObjectStore, PutOptions, RangeRead,
} from './store';
import { EMPTY_ETAG, checkInto, checkKey, checkPartNumber, checkPartSizes, clipRange, normalizeMetadata, rangeWithin } from './validate';
import { errorCodeOf } from '../util/error-code';

/** The hidden folder at the root that holds granary's own state (metadata, pending uploads); never listed, never a key. */
export const STATE_DIR = '.granary';

/** Name prefix of in-progress files written next to their target; never listed, never a key. */
export const TEMP_PREFIX = '.granary-tmp-';

/** The file in an upload's folder that names its key, so a stale upload can be told apart (parts are named 1, 2, ...). */
export const UPLOAD_KEY_FILE = 'key';

/** The longest file or folder name most Linux filesystems accept, in bytes. */
const MAX_NAME_BYTES = 255;

/** What a metadata sidecar holds: the metadata, and the ETag of the content it belongs to. */
interface MetadataRecord {
  key: string;
  etag: string;
  metadata: Record<string, string>;
}

/** A file or folder met while listing. */
interface ListEntry {
  key: string;
  path: string;
}

const isMarker = (key: string): boolean => key.endsWith('/');

/**
 * A cheap deterministic tag for a file's content, from size, mtime (ns) and inode. It is NOT an MD5: it changes
 * whenever the file is rewritten (every put renames a new inode into place), which is all the cache needs.
 */
function etagOf(stats: BigIntStats): string {
  return `${stats.size.toString(16)}-${stats.mtimeNs.toString(16)}-${stats.ino.toString(16)}`;
}

const dateOf = (stats: BigIntStats): Date => new Date(Number(stats.mtimeNs / 1_000_000n));

const tempName = (): string => `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`;

/**
 * A local folder used as a bucket (the embedded default: `granary mount ./folder ./mnt`): a key is the file at
 * the same relative path, and every folder is a directory marker `dir/` (as if each had been created with one).
 *
 * Simplifications, on purpose: user metadata lives in `.granary/meta/` (hashed key names, so any key fits and the
 * folder stays a plain folder); deleting a marker of a folder that still holds files keeps the folder; a folder
 * cannot hold a file and a subfolder of the same name, so such a put fails with InvalidArgument; symbolic links
 * to folders are not listed (no cycles); contentType is not kept; uploads left by a crashed process stay in
 * `.granary/uploads/` until removed by hand.
 */
export class LocalDirStore implements ObjectStore {
  /** The folder, as an absolute path. */
  readonly root: string;
  readonly location: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.location = `file://${this.root}`;
  }

  /** Checks that the folder exists and may be read. */
  async checkBucket(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    try {
      const stats = await fsp.stat(this.root);
      if (!stats.isDirectory()) throw new ObjectStoreError('NoSuchBucket', `${this.root} is not a folder: pass a folder to use as the bucket`);
      await fsp.access(this.root, fs.constants.R_OK | fs.constants.X_OK);
    } catch (error) {
      throw await this.failure(error, 'check of the bucket');
    }
  }

  /** Describes the file (or, for `dir/`, the folder) at `key`, with its metadata. */
  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo> {
    const file = this.pathOf(key);
    signal?.throwIfAborted();
    try {
      const info = this.infoOf(key, await fsp.stat(file, { bigint: true }));
      return { ...info, metadata: await this.readMetadata(key, info.etag) };
    } catch (error) {
      throw await this.failure(error, `head of "${key}"`);
    }
  }

  /** Lists one page of keys under a prefix, walking only the folders the page needs. */
  async list(options: ListOptions, signal?: AbortSignal): Promise<ListPage> {
    signal?.throwIfAborted();
    try {
      const page = await collectPage(this.walk(options), options);
      const objects: ObjectInfo[] = [];
      for (const entry of page.objects) {
        signal?.throwIfAborted();
        // A file removed between readdir and stat is simply no longer part of the page.
        const stats = await fsp.stat(entry.path, { bigint: true }).catch(() => undefined);
        if (stats && (stats.isFile() || (stats.isDirectory() && isMarker(entry.key)))) objects.push(this.infoOf(entry.key, stats));
      }
      return { objects, commonPrefixes: page.commonPrefixes, ...(page.nextToken !== undefined && { nextToken: page.nextToken }) };
    } catch (error) {
      throw await this.failure(error, `list of "${options.prefix}"`);
    }
  }

  /** Reads a file or a range of it; the stream reads the version that was opened, even if the key is replaced meanwhile. */
  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    const file = this.pathOf(key);
    options.signal?.throwIfAborted();
    let handle: fsp.FileHandle | undefined;
    try {
      if (isMarker(key)) {
        const info = this.infoOf(key, await fsp.stat(file, { bigint: true }));
        this.checkIfMatch(key, info.etag, options.ifMatch);
        return { body: Readable.from([]), size: 0, etag: info.etag, range: clipRange(options.range, 0, key) };
      }
      handle = await fsp.open(file, 'r');
      const info = this.infoOf(key, await handle.stat({ bigint: true }));
      this.checkIfMatch(key, info.etag, options.ifMatch);
      const range = clipRange(options.range, info.size, key);
      let body: Readable;
      if (range.end === range.start) {
        await handle.close();
        body = Readable.from([]);
      } else {
        body = handle.createReadStream({ start: range.start, end: range.end - 1 });
      }
      handle = undefined;
      if (options.signal) addAbortSignal(options.signal, body);
      return { body, size: info.size, etag: info.etag, range };
    } catch (error) {
      await handle?.close();
      throw await this.failure(error, `get of "${key}"`);
    }
  }

  /** Reads a range of a file into the buffer, from the version it opened; a call whose signal aborts rejects with its reason. */
  async getInto(key: string, into: Buffer, options: GetOptions & { range: ByteRange }): Promise<RangeRead> {
    const file = this.pathOf(key);
    const { signal } = options;
    signal?.throwIfAborted();
    checkInto(options.range, into, key);
    let handle: fsp.FileHandle | undefined;
    try {
      if (isMarker(key)) {
        // A directory marker is empty: once it is found and still the version asked for, any range is past its end.
        const info = this.infoOf(key, await fsp.stat(file, { bigint: true }));
        this.checkIfMatch(key, info.etag, options.ifMatch);
        rangeWithin(options.range, 0, key);
      }
      handle = await fsp.open(file, 'r');
      const info = this.infoOf(key, await handle.stat({ bigint: true }));
      this.checkIfMatch(key, info.etag, options.ifMatch);
      const range = rangeWithin(options.range, info.size, key);
      for (let filled = 0; filled < into.length;) {
        signal?.throwIfAborted();
        const { bytesRead } = await handle.read(into, filled, into.length - filled, range.start + filled);
        if (bytesRead === 0) throw new ObjectStoreError('Internal', `get of "${key}" in ${this.location}: the file ended after ${filled} of ${into.length} bytes of the range while it was read`);
        filled += bytesRead;
      }
      return { size: info.size, etag: info.etag, range, attempts: 1 };
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? error;
      throw await this.failure(error, `get of "${key}"`);
    } finally {
      await handle?.close();
    }
  }

  /** Writes a file atomically: to a temporary file in the same folder, synced, then renamed over the key. */
  async put(key: string, body: Buffer | Readable, options: PutOptions = {}): Promise<ObjectInfo> {
    const file = this.pathOf(key);
    options.signal?.throwIfAborted();
    try {
      if (isMarker(key)) return await this.putMarker(key, body, options);
      return await this.writeAtomically(key, file, options, async (temp) => {
        if (Buffer.isBuffer(body)) await fsp.writeFile(temp, body, { flag: 'wx', ...(options.signal && { signal: options.signal }) });
        else await pipeline(body, fs.createWriteStream(temp, { flags: 'wx' }), ...(options.signal ? [{ signal: options.signal }] : []));
      });
    } catch (error) {
      throw await this.failure(error, `put of "${key}"`);
    }
  }

  /** Starts an upload whose parts are files in `.granary/uploads/<id>/`, beside a file naming its key. */
  async createMultipartUpload(key: string, options: PutOptions = {}): Promise<MultipartUpload> {
    this.pathOf(key);
    if (isMarker(key)) throw new ObjectStoreError('InvalidArgument', `"${key}" is a directory marker in ${this.location}: put it empty instead of uploading parts`);
    options.signal?.throwIfAborted();
    const folder = path.join(this.root, STATE_DIR, 'uploads', randomBytes(12).toString('hex'));
    try {
      await fsp.mkdir(folder, { recursive: true });
      await fsp.writeFile(path.join(folder, UPLOAD_KEY_FILE), key);
    } catch (error) {
      throw await this.failure(error, `start of a multipart upload to "${key}"`);
    }
    return new LocalMultipartUpload(this, key, folder, options);
  }

  /** Copies a file (a reflink where the filesystem can) next to the destination, then renames it into place. */
  async copy(sourceKey: string, destinationKey: string, signal?: AbortSignal): Promise<ObjectInfo> {
    const source = await this.head(sourceKey, signal);
    const sourceFile = this.pathOf(sourceKey);
    const file = this.pathOf(destinationKey);
    const options: PutOptions = { metadata: source.metadata ?? {}, ...(signal && { signal }) };
    if (isMarker(sourceKey) || isMarker(destinationKey)) {
      if (source.size > 0) throw new ObjectStoreError('InvalidArgument', `copy of "${sourceKey}" to "${destinationKey}" in ${this.location}: a directory marker cannot hold ${source.size} bytes`);
      return this.put(destinationKey, Buffer.alloc(0), options);
    }
    try {
      return await this.writeAtomically(destinationKey, file, options, (temp) =>
        fsp.copyFile(sourceFile, temp, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE));
    } catch (error) {
      throw await this.failure(error, `copy of "${sourceKey}" to "${destinationKey}"`);
    }
  }

  /** Removes a file, or the folder of a marker when it is empty; what does not exist is not an error. */
  async delete(key: string, signal?: AbortSignal): Promise<void> {
    const file = this.pathOf(key);
    signal?.throwIfAborted();
    try {
      if (isMarker(key)) await fsp.rmdir(file);
      else await fsp.unlink(file);
    } catch (error) {
      const code = errorCodeOf(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        await this.checkRootExists('delete', key);
      } else if (!(code === 'EISDIR' || (isMarker(key) && (code === 'ENOTEMPTY' || code === 'EEXIST')))) {
        throw await this.failure(error, `delete of "${key}"`);
      }
    }
    await fsp.rm(this.metadataPath(key), { force: true });
  }

  /** Deletes keys one by one; returns those that failed (invalid keys included). */
  async deleteMany(keys: string[], signal?: AbortSignal): Promise<string[]> {
    const failed: string[] = [];
    for (const key of keys) {
      signal?.throwIfAborted();
      try {
        await this.delete(key, signal);
      } catch (error) {
        if (isObjectStoreError(error, 'NoSuchBucket')) throw error;
        failed.push(key);
      }
    }
    return failed;
  }

  /** Nothing to release: every call opens and closes its own files. */
  close(): void {}

  /** The path of `key` under the root, after checking that the key cannot escape or alias it. */
  pathOf(key: string): string {
    checkKey(key, this.location);
    const segments = key.split('/');
    if (isMarker(key)) segments.pop();
    const bad = (why: string) => new ObjectStoreError('InvalidArgument', `key "${key}" is not valid in ${this.location}: ${why}`);
    if (key.includes('\0')) throw bad('it contains a NUL byte');
    if (key.startsWith('/')) throw bad('it is absolute; keys are relative to the bucket root');
    for (const segment of segments) {
      if (segment === '') throw bad('it has an empty path segment ("//")');
      if (segment === '.' || segment === '..') throw bad(`it has a "${segment}" segment`);
      if (segment.startsWith(TEMP_PREFIX)) throw bad(`names starting with ${TEMP_PREFIX} are reserved for files being written`);
      if (Buffer.byteLength(segment) > MAX_NAME_BYTES) throw bad(`the name "${segment.slice(0, 32)}..." is longer than ${MAX_NAME_BYTES} bytes`);
    }
    if (segments[0] === STATE_DIR) throw bad(`${STATE_DIR}/ is reserved for granary's own state`);
    return path.join(this.root, ...segments);
  }

  /** The ObjectInfo (without metadata) of a file or a marker's folder; NotFound when the kind does not match the key. */
  private infoOf(key: string, stats: BigIntStats): ObjectInfo {
    if (isMarker(key) && stats.isDirectory()) return { key, size: 0, etag: EMPTY_ETAG, lastModified: dateOf(stats) };
    if (!isMarker(key) && stats.isFile()) return { key, size: Number(stats.size), etag: etagOf(stats), lastModified: dateOf(stats) };
    throw Object.assign(new Error(`${key} is a ${stats.isDirectory() ? 'folder' : 'special file'}`), { code: 'ENOENT' });
  }

  private checkIfMatch(key: string, etag: string, ifMatch: string | undefined): void {
    if (ifMatch !== undefined && ifMatch !== etag) {
      throw new ObjectStoreError('PreconditionFailed', `get of "${key}" in ${this.location}: it changed (ETag ${etag}, expected ${ifMatch}); read it again`);
    }
  }

  private async putMarker(key: string, body: Buffer | Readable, options: PutOptions): Promise<ObjectInfo> {
    let size = 0;
    if (Buffer.isBuffer(body)) size = body.length;
    else for await (const chunk of body) size += (chunk as Buffer).length;
    if (size > 0) throw new ObjectStoreError('InvalidArgument', `"${key}" is a directory marker: its body must be empty in ${this.location}`);
    const folder = this.pathOf(key);
    await fsp.mkdir(folder, { recursive: true });
    await this.writeMetadata(key, EMPTY_ETAG, options.metadata);
    return this.infoOf(key, await fsp.stat(folder, { bigint: true }));
  }

  /**
   * The one way content reaches a key: 1. write a temporary file beside it, 2. fsync it, 3. record its metadata
   * under the new ETag (so the object never shows without it), 4. rename it over the key, 5. fsync the folder.
   * On any failure the temporary file is removed and the key keeps its previous content.
   */
  private async writeAtomically(key: string, file: string, options: PutOptions, write: (temp: string) => Promise<void>): Promise<ObjectInfo> {
    const folder = path.dirname(file);
    await fsp.mkdir(folder, { recursive: true });
    const temp = path.join(folder, tempName());
    try {
      await write(temp);
      const handle = await fsp.open(temp, 'r');
      let stats: BigIntStats;
      try {
        await handle.sync();
        stats = await handle.stat({ bigint: true });
      } finally {
        await handle.close();
      }
      const info = this.infoOf(key, stats);
      options.signal?.throwIfAborted();
      await this.writeMetadata(key, info.etag, options.metadata);
      await fsp.rename(temp, file);
      await syncFolder(folder);
      return info;
    } catch (error) {
      await fsp.rm(temp, { force: true });
      throw error;
    }
  }

  /** Sidecar path of a key's metadata: hashed, so that keys `a` and `a.json/b` cannot collide and any length fits. */
  private metadataPath(key: string): string {
    const digest = createHash('sha256').update(key).digest('hex');
    return path.join(this.root, STATE_DIR, 'meta', digest.slice(0, 2), `${digest}.json`);
  }

  private async writeMetadata(key: string, etag: string, metadata: Record<string, string> | undefined): Promise<void> {
    const file = this.metadataPath(key);
    const normalized = normalizeMetadata(metadata);
    if (Object.keys(normalized).length === 0) {
      await fsp.rm(file, { force: true });
      return;
    }
    const record: MetadataRecord = { key, etag, metadata: normalized };
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const temp = `${file}.${randomBytes(4).toString('hex')}`;
    await fsp.writeFile(temp, JSON.stringify(record));
    await fsp.rename(temp, file);
  }

  /** The metadata recorded for this key and content; none when the file was rewritten by something else since. */
  private async readMetadata(key: string, etag: string): Promise<Record<string, string>> {
    try {
      const record = JSON.parse(await fsp.readFile(this.metadataPath(key), 'utf8')) as MetadataRecord;
      return record.key === key && record.etag === etag ? record.metadata : {};
    } catch {
      return {};
    }
  }

  /**
   * Yields files and folders (as markers `dir/`) under the prefix in key order. Folders sort as `name/`, so a
   * depth-first walk of each folder's sorted names is in global key order. A folder whose whole subtree rolls up
   * into one common prefix, or lies before the continuation token or start-after key, is not entered.
   */
  private async *walk(options: ListOptions): AsyncGenerator<ListEntry> {
    const { prefix, delimiter } = options;
    // Keys up to here are skipped (collectPage decides exactly which): the folders wholly before it are not entered.
    const token = options.continuationToken ?? options.startAfter;
    const base = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    let folder = this.root;
    if (base !== '') {
      try {
        folder = this.pathOf(base);
      } catch {
        return; // No valid key starts with this prefix.
      }
    }
    if (base !== '' && base === prefix) yield { key: base, path: folder };
    const visit = async function* (this: LocalDirStore, dir: string, keyPrefix: string, filter: string): AsyncGenerator<ListEntry> {
      let dirents: fs.Dirent[];
      try {
        dirents = await fsp.readdir(dir, { withFileTypes: true });
      } catch (error) {
        const code = errorCodeOf(error);
        if (dir !== this.root && (code === 'ENOENT' || code === 'ENOTDIR')) return;
        throw error;
      }
      const children: Array<{ name: string; file: string; folder: boolean }> = [];
      for (const dirent of dirents) {
        if ((keyPrefix === '' && dirent.name === STATE_DIR) || dirent.name.startsWith(TEMP_PREFIX)) continue;
        const file = path.join(dir, dirent.name);
        let folderEntry = dirent.isDirectory();
        if (dirent.isSymbolicLink()) {
          const target = await fsp.stat(file).catch(() => undefined);
          if (!target?.isFile()) continue;
          folderEntry = false;
        } else if (!folderEntry && !dirent.isFile()) continue;
        const name = folderEntry ? `${dirent.name}/` : dirent.name;
        if (name.startsWith(filter)) children.push({ name, file, folder: folderEntry });
      }
      children.sort((a, b) => compareKeys(a.name, b.name));
      for (const child of children) {
        const key = keyPrefix + child.name;
        if (token !== undefined && compareKeys(key, token) <= 0 && !(child.folder && token.startsWith(key))) continue;
        yield { key, path: child.file };
        if (child.folder && commonPrefixOf(key, prefix, delimiter) === undefined) yield* visit.call(this, child.file, key, '');
      }
    };
    yield* visit.call(this, folder, base, prefix.slice(base.length));
  }

  /** Throws NoSuchBucket when the root folder is gone. */
  private async checkRootExists(operation: string, key: string): Promise<void> {
    if (!(await this.rootExists())) throw new ObjectStoreError('NoSuchBucket', `${operation} of "${key}" failed: the folder ${this.root} does not exist; create it or fix the path`);
  }

  private async rootExists(): Promise<boolean> {
    return fsp.stat(this.root).then((s) => s.isDirectory(), () => false);
  }

  /** Maps a filesystem error to an ObjectStoreError whose message names the action ("get of \"a/b\""), the folder and the next step. */
  async failure(error: unknown, action: string): Promise<unknown> {
    if (isObjectStoreError(error) || (error instanceof Error && error.name === 'AbortError')) return error;
    const code = errorCodeOf(error);
    const what = `${action} in ${this.location}`;
    const detail = error instanceof Error ? error.message : String(error);
    const cause = { cause: error };
    switch (code) {
      case 'ENOENT':
      case 'ENOTDIR': {
        if (!(await this.rootExists())) return new ObjectStoreError('NoSuchBucket', `${what} failed: the folder ${this.root} does not exist; create it or fix the path`, cause);
        return new ObjectStoreError('NotFound', `${what} failed: no such object`, cause);
      }
      case 'EACCES':
      case 'EPERM':
      case 'EROFS':
        return new ObjectStoreError('AccessDenied', `${what} failed: permission denied (${code}); check the folder's owner and mode`, cause);
      case 'EISDIR':
      case 'EEXIST':
      case 'ENOTEMPTY':
        return new ObjectStoreError('InvalidArgument', `${what} failed: a file and a folder of the same name cannot both exist in a local folder (${code})`, cause);
      case 'ENAMETOOLONG':
        return new ObjectStoreError('InvalidArgument', `${what} failed: the path is too long for the filesystem`, cause);
      default:
        return new ObjectStoreError('Internal', `${what} failed: ${detail}`, cause);
    }
  }
}

/** Makes a rename durable (a directory entry change is only durable once its folder is synced). */
async function syncFolder(folder: string): Promise<void> {
  const handle = await fsp.open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A local multipart upload: one file per part, concatenated in part-number order by complete(). */
class LocalMultipartUpload implements MultipartUpload {
  private state: 'open' | 'completed' | 'aborted' = 'open';

  constructor(
    private readonly store: LocalDirStore,
    readonly key: string,
    private readonly folder: string,
    private readonly options: PutOptions,
  ) {}

  async uploadPart(partNumber: number, body: Buffer, signal?: AbortSignal): Promise<void> {
    checkPartNumber(partNumber, this.key);
    this.checkOpen();
    signal?.throwIfAborted();
    try {
      const temp = path.join(this.folder, tempName());
      await fsp.writeFile(temp, body, signal && { signal });
      await fsp.rename(temp, path.join(this.folder, String(partNumber)));
    } catch (error) {
      throw await this.store.failure(error, `upload of part ${partNumber} to "${this.key}"`);
    }
  }

  async complete(): Promise<ObjectInfo> {
    this.checkOpen();
    let info: ObjectInfo;
    try {
      const names = (await fsp.readdir(this.folder)).filter((name) => /^\d+$/.test(name));
      const parts = await Promise.all(names.map(async (name) => ({
        partNumber: Number(name),
        file: path.join(this.folder, name),
        size: (await fsp.stat(path.join(this.folder, name))).size,
      })));
      parts.sort((a, b) => a.partNumber - b.partNumber);
      checkPartSizes(parts, this.key);
      // Through the store's atomic write path, so the object appears whole or not at all.
      info = await this.store.put(this.key, Readable.from(concatenate(parts.map((p) => p.file))), this.options);
    } catch (error) {
      throw await this.store.failure(error, `complete of the multipart upload to "${this.key}"`);
    }
    this.state = 'completed';
    await fsp.rm(this.folder, { recursive: true, force: true });
    return info;
  }

  async abort(): Promise<void> {
    if (this.state === 'completed') return;
    this.state = 'aborted';
    await fsp.rm(this.folder, { recursive: true, force: true });
  }

  private checkOpen(): void {
    if (this.state !== 'open') {
      throw new ObjectStoreError('NotFound', `the multipart upload to "${this.key}" was already ${this.state}: start a new one`);
    }
  }
}

async function* concatenate(files: string[]): AsyncGenerator<Buffer> {
  for (const file of files) yield* fs.createReadStream(file) as AsyncIterable<Buffer>;
}
