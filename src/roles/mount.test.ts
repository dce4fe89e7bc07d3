import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import pino from 'pino';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseMountConfig } from '../config/mount';
import { silentLogger } from '../log/logger';
import { MemoryStore } from '../objectstore/memory';
import type { BlockFetcher } from '../blocks/block-fetcher';
import { OriginFetcher } from '../blocks/origin-fetcher';
import type { MountCache, openMountCache } from '../cache/mount-cache';
import { FakeKernel } from '../fs/fuse/fake-kernel';
import { S3Store } from '../objectstore/s3';
import { serveMount } from './mount';

describe('serveMount', () => {
  let dir: string;
  let kernel: FakeKernel;
  let store: MemoryStore;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-serve-'));
    kernel = new FakeKernel();
    store = new MemoryStore('bucket');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const config = (extra: Record<string, unknown> = {}) => parseMountConfig({ source: 's3://bucket/vol', mountpoint: dir, ...extra });
  const dependencies = (signals: EventEmitter) => ({
    logger: silentLogger(),
    fuseSystem: kernel,
    mounts: () => [],
    signals,
    openSource: () => ({ store, prefix: 'vol/' }),
  });

  it('mounts, writes ready to the ready fd, and unmounts on SIGTERM', async () => {
    const readyFile = path.join(dir, '..', `${path.basename(dir)}.ready`);
    const readyFd = fs.openSync(readyFile, 'w');
    const signals = new EventEmitter();
    const served = serveMount(config({ readyFd, readOnly: true }), dependencies(signals));
    while (!fs.readFileSync(readyFile, 'utf8')) await new Promise((r) => setTimeout(r, 5));
    expect(fs.readFileSync(readyFile, 'utf8')).toBe('ready\n');
    expect(kernel.mounts[0]).toMatchObject({ source: 's3://bucket/vol', type: 'fuse.granary', mountpoint: fs.realpathSync(dir) });
    expect(kernel.mounts[0]?.options).toContain('ro');
    signals.emit('SIGTERM');
    await served;
    expect(kernel.unmounts).toEqual([[fs.realpathSync(dir), false]]);
    expect(signals.listenerCount('SIGTERM')).toBe(0);
    fs.rmSync(readyFile);
  });

  it('warns that a mountpoint that is not empty has its entries hidden while mounted', async () => {
    fs.writeFileSync(path.join(dir, 'hidden.txt'), 'under the mount');
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _encoding, done) => void (lines.push(chunk.toString()), done()) }));
    const signals = new EventEmitter();
    let onReady: () => void = () => undefined;
    const live = new Promise<void>((resolve) => (onReady = resolve));
    const served = serveMount(config(), { ...dependencies(signals), logger, onReady });
    await live;
    signals.emit('SIGTERM');
    await served;
    const warnings = lines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((line) => line.msg.startsWith('the mountpoint is not empty'));
    expect(warnings).toEqual([expect.objectContaining({ level: 40, mountpoint: fs.realpathSync(dir), hidden: 1, first: ['hidden.txt'] })]);
  });

  it('returns when someone else unmounts', async () => {
    const signals = new EventEmitter();
    let onReady: () => void = () => undefined;
    const live = new Promise<void>((resolve) => (onReady = resolve));
    const served = serveMount(config(), { ...dependencies(signals), onReady });
    await live;
    kernel.disconnect();
    await served;
    expect(kernel.unmounts).toEqual([]);
  });

  it('aborts, at start, the multipart uploads its state directory records from a previous mount', async () => {
    const stateDir = path.join(dir, '..', `${path.basename(dir)}.state`);
    const orphan = await store.createMultipartUpload('vol/ckpt/step-9.pt');
    fs.mkdirSync(stateDir);
    const entry = { bucket: store.location, key: orphan.key, uploadId: orphan.uploadId, startedAt: new Date().toISOString() };
    fs.writeFileSync(path.join(stateDir, 'uploads.json'), JSON.stringify({ version: 1, uploads: [entry] }));
    expect(store.pendingUploads()).toEqual(['vol/ckpt/step-9.pt']);
    const signals = new EventEmitter();
    const served = serveMount(config({ stateDir }), dependencies(signals));
    while (store.pendingUploads().length > 0) await new Promise((r) => setTimeout(r, 5));
    signals.emit('SIGTERM');
    await served;
    expect(JSON.parse(fs.readFileSync(path.join(stateDir, 'uploads.json'), 'utf8'))).toEqual({ version: 1, uploads: [] });
    fs.rmSync(stateDir, { recursive: true });
  });

  it('fails before mounting when the bucket cannot be used', async () => {
    store.failNext('checkBucket', 'AccessDenied');
    await expect(serveMount(config(), dependencies(new EventEmitter()))).rejects.toThrow(/cannot use memory:\/\/bucket/);
    expect(kernel.mounts).toEqual([]);
  });
});

describe('mountVolume wiring the cluster cache', () => {
  let dir: string;
  let kernel: FakeKernel;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-wiring-'));
    kernel = new FakeKernel();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const cached = { peers: ['http://10.0.0.5:7070'], tokenFile: '/etc/granary/token' };
  /** An S3Store whose bucket check passes without a server (the mount asks nothing else of it here); its close is recorded. */
  function unreachableS3Store(events: string[]): S3Store {
    const store = new S3Store({ bucket: 'models', endpoint: 'http://127.0.0.1:9' }, {});
    store.checkBucket = async () => undefined;
    const closeStore = store.close.bind(store);
    store.close = () => {
      events.push('store closed');
      closeStore();
    };
    return store;
  }
  /** A cache that records what the composition root does with it. */
  function recordingCache(events: string[]) {
    const wrapped: BlockFetcher[] = [];
    const opened: Array<Parameters<typeof openMountCache>> = [];
    const cache: MountCache = {
      fetcher(origin) {
        wrapped.push(origin);
        return { fetch: (request) => origin.fetch(request) };
      },
      stats: () => undefined,
      close: () => events.push('cache closed'),
    };
    const openCache: typeof openMountCache = async (...args) => {
      opened.push(args);
      return cache;
    };
    return { openCache, wrapped, opened };
  }

  it('hands the filesystem the cache\'s block fetcher, and closes the cache and then the store after the filesystem', async () => {
    const events: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _encoding, done) => (events.push(`log: ${JSON.parse(chunk.toString()).msg}`), done()) }));
    const store = unreachableS3Store(events);
    const { openCache, wrapped, opened } = recordingCache(events);
    const signals = new EventEmitter();
    const config = parseMountConfig({ source: 's3://models/llama', mountpoint: dir, cache: cached });
    let onReady: () => void = () => undefined;
    const live = new Promise<void>((resolve) => (onReady = resolve));
    const served = serveMount(config, { logger, fuseSystem: kernel, mounts: () => [], signals, openSource: () => ({ store, prefix: 'llama/' }), openCache, onReady });
    await live;
    expect(opened.map(([cache, store]) => [cache, store])).toEqual([[config.cache, { endpoint: 'http://127.0.0.1:9', bucket: 'models' }]]);
    expect(wrapped).toHaveLength(1);
    expect(wrapped[0]).toBeInstanceOf(OriginFetcher);
    signals.emit('SIGTERM');
    await served;
    const tail = events.slice(events.indexOf('log: read path closing: counters since the mount'));
    expect(tail).toEqual(['log: read path closing: counters since the mount', 'log: cluster cache counters since the mount', 'cache closed', 'store closed']);
  });

  it('refuses the cache for a source that is not s3://, before opening the cache or mounting, and closes the store', async () => {
    const events: string[] = [];
    const store = new MemoryStore('bucket');
    store.close = () => events.push('store closed');
    const { openCache, opened } = recordingCache(events);
    const config = parseMountConfig({ source: '/data/local', mountpoint: dir, cache: cached });
    await expect(serveMount(config, { logger: silentLogger(), fuseSystem: kernel, mounts: () => [], signals: new EventEmitter(), openSource: () => ({ store, prefix: '' }), openCache })).rejects.toThrow(
      /the cluster cache serves s3:\/\/ sources only; memory:\/\/bucket is read directly: drop the --cache-\* flags/,
    );
    expect(opened).toEqual([]);
    expect(kernel.mounts).toEqual([]);
    expect(events).toEqual(['store closed']);
  });

  it('closes the cache and the store when the mount itself fails', async () => {
    const events: string[] = [];
    const store = unreachableS3Store(events);
    const { openCache } = recordingCache(events);
    kernel.mount = async () => {
      throw new Error('fusermount: permission denied');
    };
    const config = parseMountConfig({ source: 's3://models/llama', mountpoint: dir, cache: cached });
    await expect(serveMount(config, { logger: silentLogger(), fuseSystem: kernel, mounts: () => [], signals: new EventEmitter(), openSource: () => ({ store, prefix: 'llama/' }), openCache })).rejects.toThrow(/permission denied/);
    expect(events).toEqual(['cache closed', 'store closed']);
  });
});
