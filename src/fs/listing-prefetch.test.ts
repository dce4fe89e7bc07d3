// A directory read fetches its subdirectories' listings ahead (prefetchListings), so a walk finds its next
// directories listed: counted in LISTs, bounded in how many run at once and how old a listing a read takes,
// and consistent with changes made through the mount.
import { constants as fsConstants } from 'node:fs';
import { silentLogger } from '../log/logger';
import type { ListOptions, ListPage } from '../objectstore/store';
import { MemoryStore } from '../objectstore/memory';
import { Filesystem } from './filesystem';
import type { RequestContext } from './fuse/operations';
import { ROOT_NODE_ID } from './fuse/protocol';
import { PREFETCH_CONCURRENCY, SUBTREE_MAX_PAGES } from './namespace';

const context: RequestContext = { unique: 1n, uid: 0, gid: 0, pid: 1, signal: new AbortController().signal, expired: new AbortController().signal, progress: () => undefined };
const PREFIX = 'vol/';

/** A MemoryStore that counts LISTs by prefix (a subtree's, without a delimiter, as `prefix**`) and can hold them (a gate) to show how many run at once. */
class GatedStore extends MemoryStore {
  lists: string[] = [];
  running = 0;
  mostAtOnce = 0;
  private gate: Promise<void> | undefined;
  private held: RegExp | undefined;
  private open: () => void = () => undefined;

  /** Holds the LISTs whose prefix matches `prefixes` until release(). */
  hold(prefixes: RegExp): void {
    this.held = prefixes;
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.gate = undefined;
    this.open();
  }

  override async list(options: ListOptions, signal?: AbortSignal): Promise<ListPage> {
    this.lists.push(`${options.prefix ?? ''}${options.delimiter ? '' : '**'}`);
    this.running++;
    this.mostAtOnce = Math.max(this.mostAtOnce, this.running);
    try {
      if (this.gate && this.held?.test(`${options.prefix ?? ''}${options.delimiter ? '' : '**'}`)) await this.gate;
      return await super.list(options, signal);
    } finally {
      this.running--;
    }
  }
}

/** Waits until `done()` holds, turning the event loop (the store answers at once unless held). */
async function until(done: () => boolean): Promise<void> {
  for (let spins = 0; !done(); spins++) {
    if (spins > 10_000) throw new Error('the LISTs never got there');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Waits until no LIST is running. */
const settled = (store: GatedStore) => until(() => store.running === 0);

describe('listings fetched ahead by a directory read', () => {
  let store: GatedStore;
  let now: number;
  let fs: Filesystem;
  const make = (prefetchListings: number, listPageSize = 1000) =>
    new Filesystem({ store, prefix: PREFIX, attrTimeoutMs: 1000, listPageSize, prefetchListings, logger: silentLogger(), clock: () => now });
  const perDirectory = () => store.lists.filter((prefix) => /^vol\/tree\/d\d\/$/.test(prefix));

  beforeEach(async () => {
    store = new GatedStore();
    now = 1_000_000;
    for (let d = 0; d < 10; d++) for (let f = 0; f < 3; f++) await store.put(`${PREFIX}tree/d${d}/f${f}`, Buffer.from(`${d}.${f}`));
  });
  afterEach(() => fs.close());

  async function names(path: string[]): Promise<string[]> {
    let nodeId = ROOT_NODE_ID;
    for (const name of path) nodeId = (await fs.lookup(context, nodeId, name)).nodeId;
    const { handle } = await fs.opendir(context, nodeId, 0);
    const entries = await fs.readdirplus(context, nodeId, handle, 0, 64 * 1024);
    await fs.releasedir(context, nodeId, handle);
    return entries.map((entry) => entry.name).filter((name) => name !== '.' && name !== '..');
  }

  it('lists a walk of 10 small directories in one subtree LIST: their reads list nothing of their own', async () => {
    fs = make(16);
    expect(await names(['tree'])).toEqual(['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd8', 'd9']);
    await settled(store);
    expect(store.lists).toEqual(['vol/', 'vol/tree/', 'vol/tree/**']);
    for (let d = 0; d < 10; d++) expect(await names(['tree', `d${d}`])).toEqual(['f0', 'f1', 'f2']);
    expect(store.lists).toHaveLength(3); // every subdirectory read took its listing, cut from the subtree's
  });

  it('falls back to one LIST per subdirectory, at most PREFETCH_CONCURRENCY at once, when the subtree is larger than SUBTREE_MAX_PAGES pages', async () => {
    // 30 keys in pages of 5: 6 pages, more than SUBTREE_MAX_PAGES.
    expect(SUBTREE_MAX_PAGES).toBeLessThan(6);
    fs = make(16, 5);
    await names(['tree']);
    await settled(store);
    expect(store.lists.filter((prefix) => prefix === 'vol/tree/**')).toHaveLength(SUBTREE_MAX_PAGES);
    expect(perDirectory().sort()).toEqual(Array.from({ length: 10 }, (_, d) => `vol/tree/d${d}/`));
    const before = store.lists.length;
    for (let d = 0; d < 10; d++) expect(await names(['tree', `d${d}`])).toEqual(['f0', 'f1', 'f2']);
    expect(store.lists.length).toBe(before);
    expect(store.mostAtOnce).toBeLessThanOrEqual(PREFETCH_CONCURRENCY);
  });

  it('fetches ahead only the first prefetchListings subdirectories, in name order, and none with 0', async () => {
    fs = make(3);
    await names(['tree']);
    await settled(store);
    const afterTop = store.lists.length;
    for (let d = 0; d < 3; d++) await names(['tree', `d${d}`]);
    expect(store.lists.length).toBe(afterTop);
    await names(['tree', 'd3']);
    expect(store.lists.slice(afterTop)).toEqual(['vol/tree/d3/']);
    fs.close();
    store.lists = [];
    fs = make(0);
    await names(['tree']);
    await settled(store);
    expect(store.lists).toEqual(['vol/', 'vol/tree/']);
  });

  it('waits for a subtree LIST still running instead of listing again', async () => {
    fs = make(16);
    store.hold(/^vol\/tree\/\*\*$/);
    await names(['tree']);
    await until(() => store.running === 1 && store.lists.includes('vol/tree/**')); // the subtree's LIST waits at the gate
    const reading = names(['tree', 'd9']);
    for (let spin = 0; spin < 20; spin++) await new Promise((resolve) => setImmediate(resolve));
    expect(store.lists).toEqual(['vol/', 'vol/tree/', 'vol/tree/**']); // d9's read waits: it has not listed
    store.release();
    expect(await reading).toEqual(['f0', 'f1', 'f2']);
    await settled(store);
    expect(perDirectory()).toEqual([]);
  });

  it('lists afresh when the prefetched listing is older than attrTimeoutMs, so other clients\' objects show', async () => {
    fs = make(16);
    await names(['tree']);
    await settled(store);
    await store.put(`${PREFIX}tree/d4/from-another-client`, Buffer.from('new'));
    now += 1001;
    expect(await names(['tree', 'd4'])).toEqual(['f0', 'f1', 'f2', 'from-another-client']);
  });

  it('shows a file created through the mount in a prefetched directory at once', async () => {
    fs = make(16);
    await names(['tree']);
    await settled(store);
    const d3 = await fs.lookup(context, (await fs.lookup(context, ROOT_NODE_ID, 'tree')).nodeId, 'd3');
    await fs.mkdir(context, d3.nodeId, 'made-here', 0o755, 0);
    expect(await names(['tree', 'd3'])).toEqual(['f0', 'f1', 'f2', 'made-here']);
  });

  it('is taken once: the next read of the same directory lists afresh', async () => {
    fs = make(16);
    await names(['tree']);
    await settled(store);
    expect(await names(['tree', 'd2'])).toEqual(['f0', 'f1', 'f2']);
    await store.put(`${PREFIX}tree/d2/from-another-client`, Buffer.from('new'));
    const before = store.lists.length;
    expect(await names(['tree', 'd2'])).toEqual(['f0', 'f1', 'f2', 'from-another-client']);
    expect(store.lists.length).toBe(before + 1);
  });

  it("takes only listings fetched ahead: a directory a lookup listed shows another client's object at once", async () => {
    fs = make(16);
    await fs.lookup(context, ROOT_NODE_ID, 'tree'); // the root's listing, taken for a lookup
    await store.put(`${PREFIX}from-another-client`, Buffer.from('new'));
    expect(await names([])).toEqual(['from-another-client', 'tree']);
  });

  it('lists afresh when a name there changed in a way only the store knows (a file written through the mount)', async () => {
    fs = make(16);
    const tree = (await fs.lookup(context, ROOT_NODE_ID, 'tree')).nodeId;
    await names(['tree']);
    await settled(store);
    const d5 = (await fs.lookup(context, tree, 'd5')).nodeId;
    const { entry, open } = await fs.create(context, d5, 'written', 0o644, fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o22);
    await fs.write(context, entry.nodeId, open.handle, 0, Buffer.from('data'));
    await fs.flush(context, entry.nodeId, open.handle);
    await fs.release(context, entry.nodeId, open.handle, 0);
    await store.put(`${PREFIX}tree/d5/from-another-client`, Buffer.from('new'));
    expect(await names(['tree', 'd5'])).toEqual(['f0', 'f1', 'f2', 'from-another-client', 'written']);
  });
});
