import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { silentLogger } from '../../log/logger';
import { isBlockId } from '../block';
import { BLOCK_HEADER_BYTES, DiskTier, TEMP_PREFIX, decodeBlockFile, type DiskTierOptions, type FreeSpace } from './disk';

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

/** Every file under blocks/, by name, with its size. */
async function filesOnDisk(): Promise<Map<string, number>> {
  const files = new Map<string, number>();
  const root = path.join(dir, 'blocks');
  for (const folder of await fsp.readdir(root)) {
    for (const name of await fsp.readdir(path.join(root, folder))) files.set(name, (await fsp.stat(path.join(root, folder, name))).size);
  }
  return files;
}

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
    expect(decodeBlockFile(contents)).toEqual({ data });
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
    const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(JSON.parse(chunk.toString())), done()) });
    const second = await open({ logger: pino({ level: 'info' }, sink) });
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
