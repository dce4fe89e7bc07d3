import type { ByteRange } from '../blocks/block-math';
import type { BlockRequest, BlockFetcher } from '../blocks/block-fetcher';
import { capturingLogger, silentLogger, type Logger } from '../log/logger';
import { ObjectStoreError } from '../objectstore/errors';
import type { BlockRef } from './block';
import { ClusterFetcher, type OwnerDirectory } from './cluster-fetcher';
import { PeerError, type FetchedBlock } from './peer-client';
import { NoPeers, Ring } from './ring';
import { TokenRefusals } from './token-refusals';

const BLOCK = 1024 * 1024;
const OWNER = 'http://127.0.0.11:7070';

function setup(options: { fetchBlock?: (peer: string, ref: BlockRef, range: ByteRange) => Promise<FetchedBlock>; ring?: Ring | typeof NoPeers; originFailure?: Error; logger?: Logger; refusals?: TokenRefusals } = {}) {
  const reported: string[] = [];
  const slow: string[] = [];
  const directory: OwnerDirectory = {
    picker: () => options.ring ?? new Ring([{ url: OWNER, weight: 1 }]),
    reportFailure: (url) => reported.push(url),
    reportSlow: (url) => slow.push(url),
  };
  const asked: Array<{ peer: string; ref: BlockRef; range: ByteRange }> = [];
  const client = {
    fetchBlock: async (peer: string, ref: BlockRef, range: ByteRange) => {
      asked.push({ peer, ref, range });
      if (options.fetchBlock) return options.fetchBlock(peer, ref, range);
      return { data: Buffer.alloc(range.end - range.start, 7), servedFrom: 'ram' as const };
    },
  };
  const originRequests: BlockRequest[] = [];
  const origin: BlockFetcher = {
    fetch: async (request) => {
      originRequests.push(request);
      if (options.originFailure) throw options.originFailure;
      return Buffer.alloc(request.end - request.start, 1);
    },
  };
  const source = new ClusterFetcher({ directory, client, origin, endpoint: 'http://s3:9000', bucket: 'models', blockSize: BLOCK, logger: options.logger ?? silentLogger(), ...(options.refusals && { refusals: options.refusals }) });
  return { source, asked, originRequests, reported, slow };
}

const request = (overrides: Partial<BlockRequest> = {}): BlockRequest => ({ key: 'm/w.bin', etag: 'e1', objectSize: 3 * BLOCK + 10, start: BLOCK, end: 2 * BLOCK, ...overrides });

describe('ClusterFetcher', () => {
  it('asks the owner for the range, naming the block by endpoint, bucket, key, ETag, size and index', async () => {
    const { source, asked, originRequests } = setup();
    const data = await source.fetch(request({ start: BLOCK + 4096, end: BLOCK + 8192 }));
    expect(data).toEqual(Buffer.alloc(4096, 7));
    expect(asked).toEqual([{ peer: OWNER, ref: { endpoint: 'http://s3:9000', bucket: 'models', key: 'm/w.bin', etag: 'e1', objectSize: 3 * BLOCK + 10, index: 1, blockSize: BLOCK }, range: expect.objectContaining({ start: BLOCK + 4096, end: BLOCK + 8192 }) }]);
    expect(originRequests).toHaveLength(0);
    expect(source.stats).toMatchObject({ peerFetches: 1, peerBytes: { ram: 4096 }, peerFailures: 0 });
  });

  it('reads from the object store when the owner is down, and reports it so the ring drops it', async () => {
    const { source, originRequests, reported } = setup({ fetchBlock: () => Promise.reject(new PeerError('Unavailable', 'connection refused')) });
    expect(await source.fetch(request())).toEqual(Buffer.alloc(BLOCK, 1));
    expect(originRequests).toHaveLength(1);
    expect(reported).toEqual([OWNER]);
    expect(source.stats.peerFailures).toBe(1);
  });

  it('reads from the object store when the owner is slow, and asks for a probe instead of dropping it (a busy owner is not a dead one)', async () => {
    const { source, originRequests, reported, slow } = setup({ fetchBlock: () => Promise.reject(new PeerError('TimedOut', 'did not answer within 2000 ms')) });
    expect(await source.fetch(request())).toEqual(Buffer.alloc(BLOCK, 1));
    expect(originRequests).toHaveLength(1);
    expect(reported).toEqual([]);
    expect(slow).toEqual([OWNER]);
    expect(source.stats.peerFailures).toBe(1);
  });

  it('reads from the object store when the owner is not a granary cache server, and reports it so the ring drops it', async () => {
    const { source, originRequests, reported } = setup({ fetchBlock: () => Promise.reject(new PeerError('NotGranary', 'answered 400 application/xml', 400)) });
    expect(await source.fetch(request())).toEqual(Buffer.alloc(BLOCK, 1));
    expect(originRequests).toHaveLength(1);
    expect(reported).toEqual([OWNER]);
  });

  it('reads from the object store on a wrong token, without dropping the owner (a configuration error, not a dead peer)', async () => {
    const { source, originRequests, reported } = setup({ fetchBlock: () => Promise.reject(new PeerError('Unauthorized', 'no', 401)) });
    expect(await source.fetch(request())).toEqual(Buffer.alloc(BLOCK, 1));
    expect(originRequests).toHaveLength(1);
    expect(reported).toEqual([]);
  });

  it('warns once per owner that refuses the token, naming the 401 and the owner, and counts every refusal', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = capturingLogger(lines, 'info');
    const refusals = new TokenRefusals(logger);
    const other = 'http://127.0.0.12:7070';
    const { source, originRequests } = setup({ fetchBlock: () => Promise.reject(new PeerError('Unauthorized', 'answered 401', 401)), logger, refusals });
    const spread = setup({ fetchBlock: () => Promise.reject(new PeerError('Unauthorized', 'answered 401', 401)), ring: new Ring([{ url: other, weight: 1 }]), logger, refusals });
    for (let block = 0; block < 3; block++) expect(await source.fetch(request({ start: block * BLOCK, end: block * BLOCK + 10 }))).toEqual(Buffer.alloc(10, 1));
    await spread.source.fetch(request());
    expect(originRequests).toHaveLength(3);
    expect(refusals.total).toBe(4);
    expect(lines.map((line) => ({ level: line.level, msg: line.msg }))).toEqual([
      { level: 40, msg: expect.stringContaining(`the cache server ${OWNER} refused the cache token (401): check --cache-token-file / the cluster token Secret`) },
      { level: 40, msg: expect.stringContaining(`the cache server ${other} refused the cache token (401)`) },
    ]);
  });

  it('asks the owner once and the object store once: when both fail, the read fails with the object store\'s error', async () => {
    const failed = new ObjectStoreError('Unavailable', 'get failed after 5 attempts');
    const { source, asked, originRequests } = setup({ fetchBlock: () => Promise.reject(new PeerError('Unavailable', 'filling the block from the object store failed', 502)), originFailure: failed });
    await expect(source.fetch(request())).rejects.toBe(failed);
    expect({ owner: asked.length, origin: originRequests.length }).toEqual({ owner: 1, origin: 1 });
  });

  it('goes straight to the object store with no ring, no ETag, no size, or a range that crosses a block', async () => {
    for (const [label, setupOptions, overrides] of [
      ['no ring', { ring: NoPeers }, {}],
      ['no etag', {}, { etag: '' }],
      ['no size', {}, { objectSize: undefined }],
      ['crosses', {}, { start: BLOCK - 10, end: BLOCK + 10 }],
    ] as const) {
      const { source, asked, originRequests } = setup(setupOptions);
      await source.fetch(request(overrides as Partial<BlockRequest>));
      expect({ label, asked: asked.length, origin: originRequests.length, bypassed: source.stats.bypassed }).toEqual({ label, asked: 0, origin: 1, bypassed: 1 });
    }
  });

  it('does not fall back when the reader aborted: the abort reaches the reader', async () => {
    const controller = new AbortController();
    const { source, originRequests } = setup({
      fetchBlock: () => {
        controller.abort(new Error('unmounting'));
        return Promise.reject(new PeerError('Unavailable', 'aborted'));
      },
    });
    await expect(source.fetch(request({ signal: controller.signal }))).rejects.toThrow('unmounting');
    expect(originRequests).toHaveLength(0);
  });
});
