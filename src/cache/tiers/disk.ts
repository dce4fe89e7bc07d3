// The disk tier: blocks as files on the node's NVMe, bounded by a byte cap and by a free-space floor so the
// node's disk never fills, surviving restarts.
//
// Layout: one file per block at <dir>/blocks/<first 2 hex of the id>/<id> (256 folders keep each folder
// small), in the format of block-file.ts: a header that names the block and checksums header and data,
// then the block's bytes. <dir>/blocks/format holds the format version of every block file there; a
// directory without it (format 1 wrote none) or with another version is emptied at open.
// A block is written to a temp file (.tmp-*) in its folder and renamed into place, so a reader sees a whole
// block or none. There is no fsync: after a crash a torn block fails its length or checksum check when read
// and is dropped, and the cache is never the source of truth.
//
// Bytes are counted by data length (headers excluded) against the cap; the free-space floor is checked with
// headers included. The index (sizes and recency) lives in memory and is rebuilt at open from the folder
// listing and file sizes (no file is read at open); the recency survives restarts through the files'
// mtimes (touched on every hit).
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from '../../log/logger';
import { isBlockId } from '../block';
import { ByteLru, type Sized } from '../../util/byte-lru';
import { forEachLimited } from '../../util/for-each-limited';
import { fitDiskCapacity, type DiskFacts, type DiskFit } from '../capacity-bounds';
import { SingleFlight } from '../../util/single-flight';
import { BLOCK_FORMAT_VERSION, BLOCK_HEADER_BYTES, decodeBlockFile, encodeBlockHeader } from './block-file';
import type { Tier, TierStats } from './tier';
import { errorCodeOf } from '../../util/error-code';

/** The folder under the tier's directory that holds the block folders. */
export const BLOCKS_DIR = 'blocks';

/** Name prefix of a block file being written; any left at open is from a crash and is deleted. */
export const TEMP_PREFIX = '.tmp-';

/** The file in blocks/ that names the format of every block file there. */
export const FORMAT_FILE = 'format';

/** File system calls in flight at once while the index is rebuilt at open. */
const SCAN_CONCURRENCY = 64;

/** What the tier needs to know of the file system holding its directory. */
export interface FreeSpace {
  /** Bytes an unprivileged writer can still use (statfs bavail × bsize). */
  availableBytes: number;
}

/** Options of DiskTier.open. */
export interface DiskTierOptions {
  /** The tier's directory (created if missing); the tier owns its `blocks` folder. */
  dir: string;
  /** The cap asked for (--disk-bytes); lowered at open to what the file system can hold (see capacityBytes). */
  capacityBytes: number;
  /** Free bytes the file system keeps after every write: the tier evicts, or refuses a block, to keep them. */
  freeSpaceFloorBytes: number;
  logger: Logger;
  /** Reads the file system's free space; fs.promises.statfs by default (a fake in tests). */
  statfs?: (dir: string) => Promise<FreeSpace>;
}

/** The free space of the file system holding `dir`, from statfs(2). */
export async function statfsFreeSpace(dir: string): Promise<FreeSpace> {
  const stats = await fsp.statfs(dir);
  return { availableBytes: stats.bavail * stats.bsize };
}

/** Whether two stats describe the same file version (same inode, size and mtime). */
const sameFile = (a: Stats, b: Stats): boolean => a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;

/** The format version a format file names; undefined when there is none (format 1 wrote none) or it is unreadable. */
async function readFormat(file: string): Promise<number | undefined> {
  const text = await fsp.readFile(file, 'utf8').catch(() => undefined);
  return text !== undefined && /^\d+\n?$/.test(text) ? Number.parseInt(text, 10) : undefined;
}

/** Writes the format file naming BLOCK_FORMAT_VERSION (temp file renamed into place). */
async function writeFormat(file: string): Promise<void> {
  const temp = path.join(path.dirname(file), `${TEMP_PREFIX}${path.basename(file)}.${randomBytes(6).toString('hex')}`);
  await fsp.writeFile(temp, `${BLOCK_FORMAT_VERSION}\n`);
  await fsp.rename(temp, file);
}

/** A block file found at open. */
interface FoundBlock {
  id: string;
  length: number;
  mtimeMs: number;
}

/**
 * A Tier of block files in a directory. Bytes held (committed blocks plus the reservations of writes in
 * flight) never exceed the cap; writes and disk errors never throw to the caller (a block that cannot be
 * stored is counted as rejected); a block that fails its checks is dropped and reported as a miss.
 */
export class DiskTier implements Tier {
  readonly name = 'disk';
  readonly stats: TierStats = { hits: 0, misses: 0, evictions: 0, corruptions: 0, rejections: 0 };
  private cap: number;
  private fitFacts: { facts: DiskFacts; fit: DiskFit } | undefined;
  // Committed blocks: their files are in place. The tier enforces the cap itself (the LRU's own cap is
  // unbounded) because the cap must also cover the reservations of writes in flight.
  private readonly index = new ByteLru<Sized>(Number.MAX_SAFE_INTEGER);
  private reservedBytes = 0;
  private reservedWrites = 0;
  /** File bytes (headers included) ever reserved: tells a write how much was reserved while it waited for statfs. */
  private reservedEver = 0;
  private readonly writes = new SingleFlight<void>();
  private readonly reads = new SingleFlight<Buffer | undefined>();
  private readonly fileQueues = new Map<string, Promise<void>>();
  private readonly blocksDir: string;
  private readonly statfs: (dir: string) => Promise<FreeSpace>;

  private constructor(private readonly options: DiskTierOptions) {
    this.cap = options.capacityBytes;
    this.blocksDir = path.join(options.dir, BLOCKS_DIR);
    this.statfs = options.statfs ?? statfsFreeSpace;
  }

  /** Opens the tier in `options.dir`, rebuilding its index from the block files already there. */
  static async open(options: DiskTierOptions): Promise<DiskTier> {
    if (!(options.capacityBytes >= 0)) throw new Error(`disk tier capacity ${options.capacityBytes} bytes: it must be zero or more`);
    if (!(options.freeSpaceFloorBytes >= 0)) throw new Error(`disk tier free-space floor ${options.freeSpaceFloorBytes} bytes: it must be zero or more`);
    const tier = new DiskTier(options);
    await tier.rebuild();
    return tier;
  }

  /**
   * The cap: data bytes held never exceed it. The capacity asked for, or what the file system could hold at open
   * (free space plus the blocks already there, less the floor) when that is less; the ring weight follows it.
   */
  get capacityBytes(): number {
    return this.cap;
  }

  /** How the cap was fitted to the file system at open: the facts read and the outcome; undefined when statfs failed then. */
  get capacityFit(): { facts: DiskFacts; fit: DiskFit } | undefined {
    return this.fitFacts;
  }

  /** Data bytes of the blocks held, plus those reserved by writes in flight. */
  get usedBytes(): number {
    return this.index.bytes + this.reservedBytes;
  }

  get blockCount(): number {
    return this.index.size;
  }

  has(id: string): boolean {
    return this.index.has(id);
  }

  async get(id: string): Promise<Buffer | undefined> {
    if (!this.index.has(id)) {
      this.stats.misses++;
      return undefined;
    }
    // Concurrent gets of one block share one read: one checksum, and one count and log of a corrupt file.
    const data = await this.reads.run(id, () => this.read(id));
    if (data === undefined) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    this.index.get(id);
    return data;
  }

  /** Reads and checks the block's file; a file that fails its checks is counted, logged and dropped. Never throws. */
  private async read(id: string): Promise<Buffer | undefined> {
    const file = this.fileOf(id);
    try {
      const handle = await fsp.open(file, 'r');
      try {
        const read = await handle.stat();
        const decoded = decodeBlockFile(id, await handle.readFile());
        if ('problem' in decoded) {
          this.stats.corruptions++;
          this.options.logger.warn({ blockId: id, file, problem: decoded.problem }, 'dropped a corrupt block from the disk tier; it will be fetched again');
          await this.dropIfUnchanged(id, read);
          return undefined;
        }
        // The mtime carries the recency across restarts; failing to set it only costs that.
        const now = new Date();
        await handle.utimes(now, now).catch(() => undefined);
        return decoded.data;
      } finally {
        await handle.close().catch(() => undefined);
      }
    } catch (error) {
      if (errorCodeOf(error) === 'ENOENT') await this.forgetIfMissing(id);
      else this.options.logger.warn({ err: error, blockId: id, file }, 'reading a block from the disk tier failed; it will be fetched elsewhere');
      return undefined;
    }
  }

  async put(id: string, data: Buffer): Promise<void> {
    if (data.length > this.capacityBytes) {
      this.reject(id, data.length, 'the block is larger than the cap');
      return;
    }
    // Ids name immutable bytes, so a put joining one in flight for the same id stores the same block.
    await this.writes.run(id, () => this.write(id, data));
  }

  async delete(id: string): Promise<void> {
    this.index.delete(id);
    await this.unlinkUnlessIndexed(id);
  }

  /**
   * Stores one block: read the free space, then (with no await in between, so concurrent writes never
   * overcommit) choose the blocks to evict for the cap and for the floor and reserve the bytes; wait for the
   * evicted files to go, then write and commit. Never throws.
   */
  private async write(id: string, data: Buffer): Promise<void> {
    const length = data.length;
    const fileBytes = length + BLOCK_HEADER_BYTES;
    const before = { pendingBytes: this.pendingBytes(), reservedEver: this.reservedEver };
    let availableBytes: number;
    try {
      ({ availableBytes } = await this.statfs(this.options.dir));
    } catch (error) {
      this.reject(id, length, 'the free space is unknown', error);
      return;
    }
    if (this.reservedBytes + length > this.capacityBytes) {
      this.reject(id, length, 'the cap is reserved by writes in flight');
      return;
    }
    // statfs may not show the writes in flight when it was called, nor those reserved since.
    const pendingBytes = before.pendingBytes + (this.reservedEver - before.reservedEver) + fileBytes;
    const shortfall = this.options.freeSpaceFloorBytes + pendingBytes - availableBytes;
    if (shortfall > this.index.bytes + this.index.size * BLOCK_HEADER_BYTES) {
      this.reject(id, length, `${availableBytes} bytes free and a floor of ${this.options.freeSpaceFloorBytes} bytes leave no room`);
      return;
    }
    const evicted: Promise<void>[] = [];
    let freed = 0;
    while (this.usedBytes + length > this.capacityBytes || freed < shortfall) {
      const oldest = this.index.peekOldest();
      if (oldest === undefined) break;
      freed += oldest[1].length + BLOCK_HEADER_BYTES;
      evicted.push(this.evict(oldest[0]));
    }
    let reserved = true;
    this.reservedBytes += length;
    this.reservedEver += fileBytes;
    this.reservedWrites++;
    const release = (): void => {
      if (!reserved) return;
      reserved = false;
      this.reservedBytes -= length;
      this.reservedWrites--;
    };
    try {
      await Promise.all(evicted);
      await this.serialized(id, async () => {
        await this.writeFile(id, data);
        // Released and committed in one step, so usedBytes never counts the block twice.
        release();
        this.index.set(id, { length });
      });
    } catch (error) {
      this.reject(id, length, 'writing the block file failed', error);
    } finally {
      release();
    }
  }

  /** File bytes of the writes in flight, headers included. */
  private pendingBytes(): number {
    return this.reservedBytes + this.reservedWrites * BLOCK_HEADER_BYTES;
  }

  /** Writes the block file through a temp file renamed into place; removes the temp file on failure. */
  private async writeFile(id: string, data: Buffer): Promise<void> {
    const file = this.fileOf(id);
    const temp = path.join(path.dirname(file), `${TEMP_PREFIX}${id}.${randomBytes(6).toString('hex')}`);
    try {
      const handle = await fsp.open(temp, 'wx');
      try {
        // writeFile writes every byte or throws (writev may stop short on a full disk).
        await handle.writeFile(encodeBlockHeader(id, data));
        await handle.writeFile(data);
      } finally {
        await handle.close();
      }
      await fsp.rename(temp, file);
    } catch (error) {
      await fsp.rm(temp, { force: true }).catch(() => undefined);
      throw error;
    }
  }

  /** Drops the block from the index now (freeing its bytes) and removes its file. */
  private evict(id: string): Promise<void> {
    this.index.delete(id);
    this.stats.evictions++;
    return this.unlinkUnlessIndexed(id);
  }

  /**
   * Every change to one id's file (write + commit, unlink) runs in order through this queue. Why: an evicted
   * block leaves the index at once but its file goes later; if a new write of the same id renamed its file
   * into place and committed in between, the late unlink would delete the new file behind the index's back.
   * In the queue, an unlink runs either before the write (harmless) or after its commit, when it sees the id
   * indexed again and leaves the file alone.
   */
  private serialized(id: string, change: () => Promise<void>): Promise<void> {
    const previous = this.fileQueues.get(id) ?? Promise.resolve();
    const run = previous.then(change);
    const tail = run.catch(() => undefined);
    this.fileQueues.set(id, tail);
    void tail.then(() => {
      if (this.fileQueues.get(id) === tail) this.fileQueues.delete(id);
    });
    return run;
  }

  /** Removes the id's file unless the id is indexed (a newer write committed it). Never throws. */
  private unlinkUnlessIndexed(id: string): Promise<void> {
    return this.serialized(id, async () => {
      if (this.index.has(id)) return;
      await this.unlink(this.fileOf(id));
    });
  }

  /** Drops a corrupt block, unless a new write replaced the file that was read (`read`) in the meantime. */
  private async dropIfUnchanged(id: string, read: Stats): Promise<void> {
    await this.serialized(id, async () => {
      const file = this.fileOf(id);
      const now = await fsp.stat(file).catch(() => undefined);
      if (now !== undefined && !sameFile(now, read)) return;
      this.index.delete(id);
      if (now !== undefined) await this.unlink(file);
    });
  }

  /** Forgets an indexed block whose file has vanished (removed by hand, or by a disk fault). */
  private async forgetIfMissing(id: string): Promise<void> {
    await this.serialized(id, async () => {
      if (!this.index.has(id)) return;
      const exists = await fsp.stat(this.fileOf(id)).then(() => true, () => false);
      if (!exists) this.index.delete(id);
    });
  }

  private async unlink(file: string): Promise<void> {
    try {
      await fsp.unlink(file);
    } catch (error) {
      if (errorCodeOf(error) !== 'ENOENT') this.options.logger.warn({ err: error, file }, 'removing a block file from the disk tier failed');
    }
  }

  private reject(id: string, length: number, reason: string, error?: unknown): void {
    this.stats.rejections++;
    const fields = { blockId: id, bytes: length, reason, ...(error !== undefined && { err: error }) };
    if (error !== undefined) this.options.logger.warn(fields, 'the disk tier did not store a block');
    else this.options.logger.debug(fields, 'the disk tier did not store a block');
  }

  private fileOf(id: string): string {
    return path.join(this.blocksDir, id.slice(0, 2), id);
  }

  /**
   * Lowers the cap to what the file system can hold for the tier: its free space plus `heldBytes` (the block files
   * already there), less the floor. A statfs that fails keeps the cap asked for: writes then check it again.
   */
  private async fitToFileSystem(heldBytes: number): Promise<void> {
    let availableBytes: number;
    try {
      ({ availableBytes } = await this.statfs(this.options.dir));
    } catch (error) {
      this.options.logger.warn({ err: error, dir: this.options.dir }, 'cannot read the free space of the disk tier\'s file system: keeping the --disk-bytes cap as given');
      return;
    }
    const facts: DiskFacts = { requestedBytes: this.options.capacityBytes, availableBytes, heldBytes, floorBytes: this.options.freeSpaceFloorBytes };
    const fit = fitDiskCapacity(facts);
    this.fitFacts = { facts, fit };
    this.cap = fit.capacityBytes;
  }

  /**
   * Rebuilds the index from the files in blocks/: sizes from stat (the header and checksum are checked on
   * get), recency from mtime, oldest first. Removes temp files left by a crash, anything that is not a block
   * file, and every block file when the format file names another format (or is missing); then evicts the
   * oldest blocks if they hold more than the cap (the cap was lowered since).
   */
  private async rebuild(): Promise<void> {
    await fsp.mkdir(this.blocksDir, { recursive: true });
    const formatFile = path.join(this.blocksDir, FORMAT_FILE);
    const format = await readFormat(formatFile);
    const removed = { temp: 0, junk: 0, oldFormat: 0 };
    const remove = async (file: string, kind: keyof typeof removed): Promise<void> => {
      removed[kind]++;
      await this.unlink(file);
    };
    const folders: string[] = [];
    for (const entry of await fsp.readdir(this.blocksDir, { withFileTypes: true })) {
      const file = path.join(this.blocksDir, entry.name);
      if (entry.isDirectory() && /^[0-9a-f]{2}$/.test(entry.name)) folders.push(entry.name);
      else if (entry.isDirectory()) this.options.logger.warn({ dir: file }, 'the disk tier leaves alone a folder it does not know');
      else if (entry.name !== FORMAT_FILE) await remove(file, 'junk');
    }

    const candidates: { id: string; file: string }[] = [];
    await forEachLimited(folders, SCAN_CONCURRENCY, async (folder) => {
      const folderPath = path.join(this.blocksDir, folder);
      for (const entry of await fsp.readdir(folderPath, { withFileTypes: true })) {
        const file = path.join(folderPath, entry.name);
        if (entry.isFile() && isBlockId(entry.name) && entry.name.startsWith(folder)) candidates.push({ id: entry.name, file });
        else if (entry.isDirectory()) this.options.logger.warn({ dir: file }, 'the disk tier leaves alone a folder it does not know');
        else await remove(file, entry.name.startsWith(TEMP_PREFIX) ? 'temp' : 'junk');
      }
    });

    const found: FoundBlock[] = [];
    if (format === BLOCK_FORMAT_VERSION) {
      await forEachLimited(candidates, SCAN_CONCURRENCY, async ({ id, file }) => {
        const stats = await fsp.stat(file).catch(() => undefined);
        if (stats === undefined) return;
        if (stats.size < BLOCK_HEADER_BYTES) {
          this.stats.corruptions++;
          await remove(file, 'junk');
          return;
        }
        found.push({ id, length: stats.size - BLOCK_HEADER_BYTES, mtimeMs: stats.mtimeMs });
      });
    } else {
      // Removed before the format file is written: a crash in between leaves no format file, and the next
      // open removes the rest. Should one survive anyway, get() refuses its header's version.
      await forEachLimited(candidates, SCAN_CONCURRENCY, ({ file }) => remove(file, 'oldFormat'));
      await writeFormat(formatFile);
    }

    const missing = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0')).filter((f) => !folders.includes(f));
    await forEachLimited(missing, SCAN_CONCURRENCY, (folder) => fsp.mkdir(path.join(this.blocksDir, folder), { recursive: true }).then(() => undefined));

    found.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let total = found.reduce((sum, block) => sum + block.length, 0);
    const bytesFound = total;
    await this.fitToFileSystem(bytesFound + found.length * BLOCK_HEADER_BYTES);
    let kept = 0;
    while (kept < found.length && total > this.capacityBytes) total -= (found[kept++] as FoundBlock).length;
    const overCap = found.slice(0, kept);
    this.stats.evictions += overCap.length;
    await forEachLimited(overCap, SCAN_CONCURRENCY, (block) => this.unlink(this.fileOf(block.id)));
    for (const block of found.slice(kept)) this.index.set(block.id, { length: block.length });

    this.options.logger.info(
      {
        dir: this.options.dir, blocks: found.length, bytes: bytesFound, evictedOverCap: overCap.length,
        removedTempFiles: removed.temp, removedOtherFiles: removed.junk, capacityBytes: this.capacityBytes,
        ...(this.fitFacts?.fit.clamped && { requestedCapacityBytes: this.options.capacityBytes }),
        formatVersion: BLOCK_FORMAT_VERSION,
        ...(format !== BLOCK_FORMAT_VERSION && { foundFormatVersion: format ?? null, removedOldFormatFiles: removed.oldFormat }),
      },
      'disk tier opened',
    );
  }
}
