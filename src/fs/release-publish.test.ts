// RELEASE is asynchronous (close(2) does not wait for it): while a release publishes what the flushes deferred, this
// mount shows the file with its new size, and an unlink, rename, open or truncate of the path waits for the publish
// rather than race it. Forced with a store whose PUT of the file is held until the test lets it go.
import * as nodeFs from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../log/logger';
import { MemoryStore } from '../objectstore/memory';
import type { ObjectInfo, ObjectStore, PutOptions } from '../objectstore/store';
import { Filesystem } from './filesystem';
import type { RequestContext } from './fuse/operations';
import { ROOT_NODE_ID } from './fuse/protocol';
import { ObjectFileOpener } from './file-opener';
import { DEFAULT_READ_PATH_CONFIG } from '../config/read-path';
import { ReadPath } from './read/read-path';
import { createWritePath } from './write';
import type { Readable } from 'node:stream';

const context: RequestContext = { unique: 1n, uid: 0, gid: 0, pid: 1, signal: new AbortController().signal, expired: new AbortController().signal, progress: () => undefined };
const PREFIX = 'vol/';

/** A MemoryStore whose PUTs of `key` wait until let go; `held` resolves when one is waiting. */
class HoldingStore extends MemoryStore {
  private gate: Promise<void> | undefined;
  private letGo: () => void = () => undefined;
  private onHeld: () => void = () => undefined;
  held: Promise<void> = Promise.resolve();

  hold(key: string): void {
    this.heldKey = key;
    this.gate = new Promise((resolve) => (this.letGo = resolve));
    this.held = new Promise((resolve) => (this.onHeld = resolve));
  }

  release(): void {
    this.heldKey = undefined;
    this.letGo();
  }

  private heldKey: string | undefined;

  override async put(key: string, body: Buffer | Readable, options?: PutOptions): Promise<ObjectInfo> {
    if (key === this.heldKey && this.gate) {
      this.onHeld();
      await this.gate;
    }
    return super.put(key, body, options);
  }
}

describe('a release that is still publishing', () => {
  let store: HoldingStore;
  let fs: Filesystem;
  let stagingDir: string;
  let opener: ObjectFileOpener;

  beforeEach(async () => {
    store = new HoldingStore();
    stagingDir = nodeFs.mkdtempSync(path.join(os.tmpdir(), 'granary-release-'));
    const logger = silentLogger();
    opener = new ObjectFileOpener({
      store,
      readPath: new ReadPath({ store: store as ObjectStore, config: DEFAULT_READ_PATH_CONFIG, logger }),
      writePath: createWritePath({ stagingDir, stagingMinFreeBytes: 0 }),
      logger,
    });
    await store.put(`${PREFIX}model.bin`, Buffer.from('the old weights'));
    fs = new Filesystem({ store, prefix: PREFIX, attrTimeoutMs: 1000, listPageSize: 1000, logger, opener });
  });
  afterEach(() => {
    opener.close();
    nodeFs.rmSync(stagingDir, { recursive: true, force: true });
  });

  /** `: > model.bin`: OPEN with O_TRUNC, the no-op FLUSH, then a RELEASE whose publish (an empty PUT) is held. */
  async function truncateWithHeldRelease(): Promise<{ node: number; released: Promise<void> }> {
    const node = (await fs.lookup(context, ROOT_NODE_ID, 'model.bin')).nodeId;
    const { handle } = await fs.open(context, node, fsConstants.O_WRONLY | fsConstants.O_TRUNC);
    await fs.flush(context, node, handle);
    expect((await content('model.bin')).length).toBeGreaterThan(0); // the flush published nothing
    store.hold(`${PREFIX}model.bin`);
    const released = fs.release(context, node, handle, 0);
    await store.held;
    return { node, released };
  }

  async function content(name: string): Promise<Buffer> {
    const result = await store.get(`${PREFIX}${name}`);
    const chunks: Buffer[] = [];
    for await (const chunk of result.body as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  const settled = async (promise: Promise<unknown>): Promise<boolean> => {
    let done = false;
    void promise.then(() => (done = true), () => (done = true));
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    return done;
  };

  it('shows the new size to lookup, getattr and readdir until the store has it, then the store\'s object', async () => {
    const { node, released } = await truncateWithHeldRelease();
    expect((await fs.lookup(context, ROOT_NODE_ID, 'model.bin')).attributes.size).toBe(0);
    expect((await fs.getattr(context, node)).attributes.size).toBe(0);
    const dir = await fs.opendir(context, ROOT_NODE_ID, 0);
    const listed = await fs.readdirplus(context, ROOT_NODE_ID, dir.handle, 0, 64 * 1024);
    expect(listed.find((entry) => entry.name === 'model.bin')).toMatchObject({ entry: { attributes: { size: 0 } } });
    store.release();
    await released;
    expect((await content('model.bin')).length).toBe(0);
    expect((await fs.getattr(context, node)).attributes.size).toBe(0);
  });

  it('makes an unlink wait for the publish, so the file does not come back after it', async () => {
    const { released } = await truncateWithHeldRelease();
    const unlinked = fs.unlink(context, ROOT_NODE_ID, 'model.bin');
    expect(await settled(unlinked)).toBe(false);
    store.release();
    await Promise.all([released, unlinked]);
    expect(store.keys()).not.toContain(`${PREFIX}model.bin`);
  });

  it('makes a rename wait for the publish, and moves the published object', async () => {
    const { released } = await truncateWithHeldRelease();
    const renamed = fs.rename(context, ROOT_NODE_ID, { name: 'model.bin', newParent: ROOT_NODE_ID, newName: 'moved.bin', flags: 0 });
    expect(await settled(renamed)).toBe(false);
    store.release();
    await Promise.all([released, renamed]);
    expect(store.keys()).toEqual([`${PREFIX}moved.bin`]);
    expect((await content('moved.bin')).length).toBe(0);
  });

  it('makes an open wait for the publish, and read the new object', async () => {
    const { node, released } = await truncateWithHeldRelease();
    const opened = fs.open(context, node, fsConstants.O_RDONLY);
    expect(await settled(opened)).toBe(false);
    store.release();
    const { handle } = await opened;
    await released;
    expect((await fs.read(context, node, handle, 0, 100)).length).toBe(0);
  });

  it('makes a truncate by path wait for the publish, so the publish does not undo it', async () => {
    await store.put(`${PREFIX}model.bin`, Buffer.from('0123456789'));
    const { node, released } = await truncateWithHeldRelease();
    // truncate(2) to 4 bytes of zeros, with no descriptor open.
    const truncated = fs.setattr(context, node, { size: 4 });
    expect(await settled(truncated)).toBe(false);
    store.release();
    await Promise.all([released, truncated]);
    expect(await content('model.bin')).toEqual(Buffer.alloc(4));
  });
});
