import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { crc32 } from 'node:zlib';
import pino from 'pino';
import { silentLogger } from '../../log/logger';
import { isBlockId } from '../block';
import { BLOCK_HEADER_BYTES, decodeBlockFile } from './block-file';
import { DiskTier, FORMAT_FILE, TEMP_PREFIX, type DiskTierOptions, type FreeSpace } from './disk';

let dir: string;

beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'granary-disk-tier-'));
});

afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A block id (the shape blockId() gives) for block `index` of object `key`. */
const idOf = (key: string, index = 0): string => `${createHash('sha1').update(key).digest('hex')}-${index}`;

/** `length` bytes that differ from block to block. */
const dataOf = (length: number, seed: number): Buffer => Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed * 7) & 0xff));

const fileOf = (id: string): string => path.join(dir, 'blocks', id.slice(0, 2), id);

const plentyOfSpace = async (): Promise<FreeSpace> => ({ availableBytes: 1e15 });

const open = (options: Partial<DiskTierOptions> = {}): Promise<DiskTier> =>
  DiskTier.open({ dir, capacityBytes: 1 << 20, freeSpaceFloorBytes: 0, logger: silentLogger(), statfs: plentyOfSpace, ...options });

/** Every file in the block folders under blocks/, by name, with its size. */
async function filesOnDisk(): Promise<Map<string, number>> {
  const files = new Map<string, number>();
  const root = path.join(dir, 'blocks');
  for (const folder of (await fsp.readdir(root)).filter((name) => name !== FORMAT_FILE)) {
    for (const name of await fsp.readdir(path.join(root, folder))) files.set(name, (await fsp.stat(path.join(root, folder, name))).size);
  }
  return files;
}

/** A pino logger writing into `lines` (one parsed object per line). */
const capturingLogger = (lines: Record<string, unknown>[], level = 'info'): pino.Logger =>
  pino({ level }, new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(JSON.parse(chunk.toString())), done()) }));

/** Sets a block file's mtime `secondsAgo` seconds in the past (the recency the index is rebuilt from). */
const age = (id: string, secondsAgo: number): Promise<void> => {
  const when = new Date(Date.now() - secondsAgo * 1000);
  return fsp.utimes(fileOf(id), when, when);
};

describe('DiskTier', () => {
  it('stores a block as a header and its bytes, and serves it back', async () => {
    const tier = await open();
    const id = idOf('a');
    const data = dataOf(5000, 1);
    expect(isBlockId(id)).toBe(true);
    await tier.put(id, data);
    expect(tier.has(id)).toBe(true);
    expect(tier.blockCount).toBe(1);
    expect(tier.usedBytes).toBe(5000);
    const contents = await fsp.readFile(fileOf(id));
    expect(contents.length).toBe(5000 + BLOCK_HEADER_BYTES);
    expect(contents.subarray(0, 4).toString('ascii')).toBe('GRNB');
    expect(decodeBlockFile(id, contents)).toEqual({ data });
    expect(await tier.get(id)).toEqual(data);
    expect(await tier.get(idOf('absent'))).toBeUndefined();
    expect(tier.stats).toMatchObject({ hits: 1, misses: 1, rejections: 0 });
    expect(tier.name).toBe('disk');
  });

  it('serves its blocks again after a restart', async () => {
    const first = await open();
    const ids = ['a', 'b', 'c'].map((key) => idOf(key));
    for (const [i, id] of ids.entries()) await first.put(id, dataOf(1000 + i, i));
    const second = await open();
    expect(second.blockCount).toBe(3);
    expect(second.usedBytes).toBe(1000 + 1001 + 1002);
    for (const [i, id] of ids.entries()) expect(await second.get(id)).toEqual(dataOf(1000 + i, i));
  });

  it('never holds more than its cap, even with many concurrent puts', async () => {
    const capacityBytes = 10_000;
    const tier = await open({ capacityBytes });
    let highest = 0;
    const watch = (): void => void (highest = Math.max(highest, tier.usedBytes));
    for (let wave = 0; wave < 6; wave++) {
      const puts = Array.from({ length: 20 }, (_, j) => {
        const i = wave * 20 + j;
        const put = tier.put(idOf(`k${i}`), dataOf(500 + ((i * 97) % 1000), i)).then(watch);
        watch();
        return put;
      });
      await Promise.all(puts);
    }
    expect(highest).toBeLessThanOrEqual(capacityBytes);
    expect(highest).toBeGreaterThan(capacityBytes / 2);
    const files = await filesOnDisk();
    const dataBytes = [...files.values()].reduce((sum, size) => sum + size - BLOCK_HEADER_BYTES, 0);
    expect([...files.keys()].filter((name) => name.startsWith(TEMP_PREFIX))).toEqual([]);
    expect(files.size).toBe(tier.blockCount);
    expect(dataBytes).toBe(tier.usedBytes);
    expect(dataBytes).toBeLessThanOrEqual(capacityBytes);
    expect(tier.stats.evictions).toBeGreaterThan(0);
  });

  it('writes a block once when it is put several times at once', async () => {
    let statfsCalls = 0;
    const tier = await open({ statfs: async () => (statfsCalls++, { availableBytes: 1e15 }) });
    statfsCalls = 0; // the one at open fits the cap to the file system
    const id = idOf('same');
    await Promise.all(Array.from({ length: 5 }, () => tier.put(id, dataOf(2000, 3))));
    expect(statfsCalls).toBe(1);
    expect(tier.blockCount).toBe(1);
    expect(tier.usedBytes).toBe(2000);
  });

  it('evicts the least recently used block, keeping one that was read', async () => {
    const tier = await open({ capacityBytes: 3000 });
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((key) => idOf(key)) as [string, string, string, string];
    await tier.put(a, dataOf(1000, 1));
    await tier.put(b, dataOf(1000, 2));
    await tier.put(c, dataOf(1000, 3));
    await tier.get(a);
    await tier.put(d, dataOf(1000, 4));
    expect(tier.has(a)).toBe(true);
    expect(tier.has(b)).toBe(false);
    expect(fs.existsSync(fileOf(b))).toBe(false);
    expect(tier.stats.evictions).toBe(1);
    expect(await tier.get(a)).toEqual(dataOf(1000, 1));
  });

  it('rebuilds recency from mtimes, which a read refreshes', async () => {
    const first = await open({ capacityBytes: 3000 });
    const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((key) => idOf(key)) as [string, string, string, string, string];
    for (const [i, id] of [a, b, c].entries()) await first.put(id, dataOf(1000, i));
    await age(a, 300);
    await age(b, 200);
    await age(c, 100);
    const second = await open({ capacityBytes: 3000 });
    await second.put(d, dataOf(1000, 4));
    expect(second.has(a)).toBe(false);
    expect(await second.get(b)).toEqual(dataOf(1000, 1));
    const third = await open({ capacityBytes: 3000 });
    await third.put(e, dataOf(1000, 5));
    expect(third.has(c)).toBe(false);
    expect(third.has(b)).toBe(true);
    expect(third.has(d)).toBe(true);
  });

  it('evicts to keep the free-space floor', async () => {
    const diskBytes = 20_000;
    const floor = 10_000;
    const onDisk = async (): Promise<number> => [...(await filesOnDisk()).values()].reduce((sum, size) => sum + size, 0);
    const tier = await open({ freeSpaceFloorBytes: floor, statfs: async () => ({ availableBytes: diskBytes - (await onDisk()) }) });
    const ids = Array.from({ length: 15 }, (_, i) => idOf(`f${i}`));
    for (const [i, id] of ids.entries()) {
      await tier.put(id, dataOf(1000, i));
      expect(diskBytes - (await onDisk())).toBeGreaterThanOrEqual(floor);
      expect(tier.has(id)).toBe(true);
    }
    expect(tier.stats.rejections).toBe(0);
    expect(tier.stats.evictions).toBeGreaterThan(0);
    expect(tier.has(ids[0] as string)).toBe(false);
  });

  it('refuses a block the floor leaves no room for, evicting nothing', async () => {
    let availableBytes = 1e15;
    const tier = await open({ freeSpaceFloorBytes: 10_000, statfs: async () => ({ availableBytes }) });
    const kept = idOf('kept');
    await tier.put(kept, dataOf(1000, 1));
    availableBytes = 10_000 + 500;
    const refused = idOf('refused');
    await tier.put(refused, dataOf(3000, 2));
    expect(tier.has(refused)).toBe(false);
    expect(fs.existsSync(fileOf(refused))).toBe(false);
    expect(tier.has(kept)).toBe(true);
    expect(tier.stats).toMatchObject({ rejections: 1, evictions: 0 });
    expect(tier.usedBytes).toBe(1000);
  });

  it('drops a block whose bytes fail their checksum', async () => {
    const tier = await open();
    const id = idOf('bad');
    await tier.put(id, dataOf(4000, 9));
    const contents = await fsp.readFile(fileOf(id));
    contents[BLOCK_HEADER_BYTES + 1234] = (contents[BLOCK_HEADER_BYTES + 1234] ?? 0) ^ 0xff;
    await fsp.writeFile(fileOf(id), contents);
    expect(await tier.get(id)).toBeUndefined();
    expect(fs.existsSync(fileOf(id))).toBe(false);
    expect(tier.has(id)).toBe(false);
    expect(tier.usedBytes).toBe(0);
    expect(tier.stats).toMatchObject({ corruptions: 1, misses: 1, hits: 0 });
  });

  it('drops a torn block (shorter than its header says)', async () => {
    const tier = await open();
    const id = idOf('torn');
    await tier.put(id, dataOf(4000, 9));
    await fsp.truncate(fileOf(id), BLOCK_HEADER_BYTES + 100);
    expect(await tier.get(id)).toBeUndefined();
    expect(fs.existsSync(fileOf(id))).toBe(false);
    expect(tier.stats.corruptions).toBe(1);
  });

  it('cleans leftover temp files and files that are not blocks at open, and logs what it found', async () => {
    const first = await open();
    const id = idOf('good');
    await first.put(id, dataOf(3000, 1));
    const folder = path.join(dir, 'blocks', id.slice(0, 2));
    const wrongFolder = id.slice(0, 2) === '00' ? '01' : '00';
    const leftovers = [
      path.join(folder, `${TEMP_PREFIX}${id}.abc123`),
      path.join(folder, 'notes.txt'),
      path.join(dir, 'blocks', 'stray'),
      path.join(dir, 'blocks', wrongFolder, idOf('elsewhere')),
    ];
    for (const file of leftovers) await fsp.writeFile(file, 'partial');
    const lines: Record<string, unknown>[] = [];
    const second = await open({ logger: capturingLogger(lines) });
    for (const file of leftovers) expect(fs.existsSync(file)).toBe(false);
    expect(second.blockCount).toBe(1);
    expect(await second.get(id)).toEqual(dataOf(3000, 1));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'disk tier opened', blocks: 1, bytes: 3000, removedTempFiles: 1, removedOtherFiles: 3 });
  });

  it('evicts the oldest blocks at open when the cap was lowered', async () => {
    const first = await open({ capacityBytes: 10_000 });
    const ids = Array.from({ length: 5 }, (_, i) => idOf(`c${i}`));
    for (const [i, id] of ids.entries()) {
      await first.put(id, dataOf(1000, i));
      await age(id, 500 - i * 100);
    }
    const second = await open({ capacityBytes: 2500 });
    expect(second.blockCount).toBe(2);
    expect(second.usedBytes).toBe(2000);
    expect(second.stats.evictions).toBe(3);
    expect([...(await filesOnDisk()).keys()].sort()).toEqual(ids.slice(3).sort());
  });

  it('turns a disk error on put into a rejection and cleans up', async () => {
    const tier = await open();
    const id = idOf('unwritable');
    const folder = path.join(dir, 'blocks', id.slice(0, 2));
    await fsp.rm(folder, { recursive: true });
    await fsp.writeFile(folder, 'not a folder');
    await expect(tier.put(id, dataOf(1000, 1))).resolves.toBeUndefined();
    expect(tier.has(id)).toBe(false);
    expect(tier.usedBytes).toBe(0);
    expect(tier.stats.rejections).toBe(1);
  });

  it('removes its temp file when the rename fails', async () => {
    const tier = await open();
    const id = idOf('blocked');
    await fsp.mkdir(path.join(fileOf(id), 'in-the-way'), { recursive: true });
    await expect(tier.put(id, dataOf(1000, 1))).resolves.toBeUndefined();
    expect(tier.stats.rejections).toBe(1);
    expect(tier.has(id)).toBe(false);
    expect((await fsp.readdir(path.dirname(fileOf(id)))).filter((name) => name.startsWith(TEMP_PREFIX))).toEqual([]);
  });

  it('lowers its cap at open to what the file system can hold: free space plus its own blocks, less the floor', async () => {
    const first = await open({ capacityBytes: 1 << 20 });
    for (const key of ['a', 'b']) await first.put(idOf(key), dataOf(4000, 1));
    const heldBytes = 2 * (4000 + BLOCK_HEADER_BYTES);
    const lines: Record<string, unknown>[] = [];
    const tier = await open({ capacityBytes: 2 ** 40, freeSpaceFloorBytes: 1000, statfs: async () => ({ availableBytes: 50_000 }), logger: capturingLogger(lines) });
    expect(tier.capacityBytes).toBe(50_000 + heldBytes - 1000);
    expect(tier.capacityFit).toEqual({ facts: { requestedBytes: 2 ** 40, availableBytes: 50_000, heldBytes, floorBytes: 1000 }, fit: { capacityBytes: tier.capacityBytes, holdableBytes: tier.capacityBytes, clamped: true } });
    expect(tier.blockCount).toBe(2);
    expect(lines.find((line) => line.msg === 'disk tier opened')).toMatchObject({ capacityBytes: tier.capacityBytes, requestedCapacityBytes: 2 ** 40 });
    const roomy = await open({ capacityBytes: 1 << 20, statfs: plentyOfSpace });
    expect(roomy.capacityBytes).toBe(1 << 20);
    expect(roomy.capacityFit?.fit.clamped).toBe(false);
  });

  it('keeps the cap asked for when statfs fails at open', async () => {
    const tier = await open({ capacityBytes: 12345, statfs: async () => Promise.reject(new Error('EIO')) });
    expect(tier.capacityBytes).toBe(12345);
    expect(tier.capacityFit).toBeUndefined();
  });

  it('turns a failing statfs into a rejection', async () => {
    const tier = await open({ statfs: async () => Promise.reject(new Error('EIO')) });
    await expect(tier.put(idOf('x'), dataOf(10, 1))).resolves.toBeUndefined();
    expect(tier.stats.rejections).toBe(1);
    expect(tier.blockCount).toBe(0);
  });

  it('rejects a block larger than its cap', async () => {
    const tier = await open({ capacityBytes: 100 });
    await tier.put(idOf('big'), dataOf(101, 1));
    expect(tier.stats.rejections).toBe(1);
    expect(tier.usedBytes).toBe(0);
  });

  it('deletes a block and its file; a block whose file vanished is a miss', async () => {
    const tier = await open();
    const kept = idOf('kept');
    const gone = idOf('gone');
    await tier.put(kept, dataOf(100, 1));
    await tier.put(gone, dataOf(100, 2));
    await tier.delete(kept);
    expect(fs.existsSync(fileOf(kept))).toBe(false);
    expect(tier.has(kept)).toBe(false);
    await fsp.unlink(fileOf(gone));
    expect(await tier.get(gone)).toBeUndefined();
    expect(tier.has(gone)).toBe(false);
    expect(tier.usedBytes).toBe(0);
    expect(tier.stats.corruptions).toBe(0);
  });

  it('replaces a held block without ever counting it twice', async () => {
    const tier = await open({ capacityBytes: 2000 });
    const id = idOf('again');
    await tier.put(id, dataOf(1500, 1));
    await tier.put(id, dataOf(1500, 1));
    expect(tier.usedBytes).toBe(1500);
    expect(await tier.get(id)).toEqual(dataOf(1500, 1));
  });
});

/** Writes `data` as block `id`'s file in format 1 (16-byte header, CRC-32 of the data alone), as the tier once did. */
async function writeFormatOneFile(id: string, data: Buffer): Promise<void> {
  const header = Buffer.alloc(16);
  header.write('GRNB', 0, 'ascii');
  header.writeUInt16LE(1, 4);
  header.writeUInt32LE(data.length, 8);
  header.writeUInt32LE(crc32(data), 12);
  await fsp.mkdir(path.dirname(fileOf(id)), { recursive: true });
  await fsp.writeFile(fileOf(id), Buffer.concat([header, data]));
}

/** Five bytes (the CRC-32 polynomial, bit-reflected) whose XOR at any offset leaves a message's CRC-32 unchanged. */
const CRC32_BLIND_SPOT = [0x41, 0x06, 0x71, 0xdb, 0x01];

describe('DiskTier: a block file is served only as the block it names, whole', () => {
  const blockPair = (): [string, string] => [idOf('first', 3), idOf('second', 7)];
  const warnings = (lines: Record<string, unknown>[]): Record<string, unknown>[] => lines.filter((line) => line.level === 40);

  it('drops a block whose file was renamed to another block\'s name, and forgets the one renamed away', async () => {
    const lines: Record<string, unknown>[] = [];
    const tier = await open({ logger: capturingLogger(lines) });
    const [a, b] = blockPair();
    await tier.put(a, dataOf(3000, 1));
    await tier.put(b, dataOf(3000, 2));
    await fsp.rename(fileOf(a), fileOf(b));
    expect(await tier.get(b)).toBeUndefined();
    expect(fs.existsSync(fileOf(b))).toBe(false);
    expect(tier.has(b)).toBe(false);
    expect(await tier.get(a)).toBeUndefined();
    expect(tier.has(a)).toBe(false);
    expect(tier.stats).toMatchObject({ corruptions: 1, hits: 0, misses: 2 });
    expect(tier.usedBytes).toBe(0);
    expect(warnings(lines)).toEqual([expect.objectContaining({ blockId: b, file: fileOf(b), problem: `the file holds block ${a}, not ${b}` })]);
  });

  it('drops a block whose file was overwritten with a copy of another block\'s file, and keeps the original', async () => {
    const tier = await open();
    const [a, b] = blockPair();
    await tier.put(a, dataOf(3000, 1));
    await tier.put(b, dataOf(3000, 2));
    await fsp.copyFile(fileOf(a), fileOf(b));
    expect(await tier.get(b)).toBeUndefined();
    expect(await tier.get(a)).toEqual(dataOf(3000, 1));
    expect(tier.stats).toMatchObject({ corruptions: 1, hits: 1, misses: 1 });
    expect(fs.existsSync(fileOf(b))).toBe(false);
  });

  it('drops both blocks of a swapped pair across a restart, and stores them again when refilled', async () => {
    const first = await open();
    const [a, b] = blockPair();
    await first.put(a, dataOf(3000, 1));
    await first.put(b, dataOf(3000, 2));
    const aside = `${fileOf(a)}.aside`;
    await fsp.rename(fileOf(a), aside);
    await fsp.rename(fileOf(b), fileOf(a));
    await fsp.rename(aside, fileOf(b));
    const second = await open();
    expect(second.blockCount).toBe(2);
    expect(await second.get(a)).toBeUndefined();
    expect(await second.get(b)).toBeUndefined();
    expect(second.stats).toMatchObject({ corruptions: 2, hits: 0 });
    expect(second.blockCount).toBe(0);
    await second.put(a, dataOf(3000, 1));
    await second.put(b, dataOf(3000, 2));
    expect(await second.get(a)).toEqual(dataOf(3000, 1));
    expect(await second.get(b)).toEqual(dataOf(3000, 2));
  });

  it('catches changed data under a header that names the right block, even a change CRC-32 cannot see', async () => {
    const tier = await open();
    const id = idOf('blind');
    const data = dataOf(4000, 5);
    await tier.put(id, data);
    const contents = await fsp.readFile(fileOf(id));
    CRC32_BLIND_SPOT.forEach((mask, i) => (contents[BLOCK_HEADER_BYTES + 1000 + i] = (contents[BLOCK_HEADER_BYTES + 1000 + i] ?? 0) ^ mask));
    const changed = contents.subarray(BLOCK_HEADER_BYTES);
    expect(changed.equals(data)).toBe(false);
    expect(crc32(changed)).toBe(crc32(data));
    await fsp.writeFile(fileOf(id), contents);
    expect(await tier.get(id)).toBeUndefined();
    expect(decodeBlockFile(id, contents)).toEqual({ problem: 'XXH64 checksum mismatch' });
    expect(tier.stats).toMatchObject({ corruptions: 1, hits: 0 });
    expect(fs.existsSync(fileOf(id))).toBe(false);
  });

  it('catches a changed header byte: the checksum covers the header too', async () => {
    const tier = await open();
    const id = idOf('header');
    await tier.put(id, dataOf(4000, 6));
    const contents = await fsp.readFile(fileOf(id));
    // A reserved byte: nothing but the checksum would notice it.
    contents[6] = (contents[6] ?? 0) ^ 0x01;
    await fsp.writeFile(fileOf(id), contents);
    expect(await tier.get(id)).toBeUndefined();
    expect(tier.stats.corruptions).toBe(1);
  });

  it('counts and logs a corrupt block once when many readers ask for it at once', async () => {
    const lines: Record<string, unknown>[] = [];
    const tier = await open({ logger: capturingLogger(lines) });
    const id = idOf('shared');
    await tier.put(id, dataOf(4000, 7));
    const contents = await fsp.readFile(fileOf(id));
    contents[BLOCK_HEADER_BYTES + 10] = (contents[BLOCK_HEADER_BYTES + 10] ?? 0) ^ 0xff;
    await fsp.writeFile(fileOf(id), contents);
    expect(await Promise.all(Array.from({ length: 5 }, () => tier.get(id)))).toEqual(Array.from({ length: 5 }, () => undefined));
    expect(tier.stats).toMatchObject({ corruptions: 1, misses: 5, hits: 0 });
    expect(warnings(lines)).toEqual([expect.objectContaining({ blockId: id, file: fileOf(id), problem: 'XXH64 checksum mismatch' })]);
  });

  it('removes the files of the old format at open without reading them, and serves none of them', async () => {
    const ids = ['old-1', 'old-2', 'old-3'].map((key) => idOf(key));
    for (const [i, id] of ids.entries()) await writeFormatOneFile(id, dataOf(2000, i));
    const lines: Record<string, unknown>[] = [];
    const tier = await open({ logger: capturingLogger(lines) });
    expect(tier.blockCount).toBe(0);
    for (const id of ids) {
      expect(fs.existsSync(fileOf(id))).toBe(false);
      expect(await tier.get(id)).toBeUndefined();
    }
    expect(lines).toEqual([expect.objectContaining({ msg: 'disk tier opened', blocks: 0, removedOldFormatFiles: 3, foundFormatVersion: null, formatVersion: 2 })]);
    expect(await fsp.readFile(path.join(dir, 'blocks', FORMAT_FILE), 'utf8')).toBe('2\n');
    // One that turns up later is indexed from its name and size alone at open, and refused when read.
    await writeFormatOneFile(ids[0] as string, dataOf(2000, 0));
    const reopened = await open();
    expect(reopened.has(ids[0] as string)).toBe(true);
    expect(await reopened.get(ids[0] as string)).toBeUndefined();
    expect(reopened.stats.corruptions).toBe(1);
  });

  it('removes every block file at open when the format file names another format', async () => {
    const first = await open();
    const id = idOf('newer');
    await first.put(id, dataOf(1000, 1));
    await fsp.writeFile(path.join(dir, 'blocks', FORMAT_FILE), '3\n');
    const lines: Record<string, unknown>[] = [];
    const second = await open({ logger: capturingLogger(lines) });
    expect(second.blockCount).toBe(0);
    expect(fs.existsSync(fileOf(id))).toBe(false);
    expect(lines).toEqual([expect.objectContaining({ removedOldFormatFiles: 1, foundFormatVersion: 3 })]);
  });

  it('refuses to store a block under a name that is not a block id', async () => {
    const tier = await open();
    await tier.put('not-a-block-id', dataOf(100, 1));
    expect(tier.stats.rejections).toBe(1);
    expect(tier.blockCount).toBe(0);
  });
});
