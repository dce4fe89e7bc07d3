import type { BlockRequest } from '../../blocks/block-fetcher';
import { silentLogger } from '../../log/logger';
import type { BlockRef } from '../block';
import type { PeerPicker } from '../ring';
import { isSelfMemo, ringFetcher } from './ring-fetcher';

const BLOCK = 100;
const request: BlockRequest = { key: 'k', etag: 'e', objectSize: 250, start: 110, end: 150 };
const bytes = (from: number, to: number, tag: number) => Buffer.from(Array.from({ length: to - from }, () => tag));

function setup(owner: string | undefined, self: string[] = []) {
  const calls: string[] = [];
  const reported: string[] = [];
  const store = {
    read: async (ref: BlockRef) => {
      calls.push(`store ${ref.index}`);
      return { data: bytes(ref.index * BLOCK, Math.min(250, (ref.index + 1) * BLOCK), 1), servedFrom: 'ram' as const };
    },
  };
  const client = {
    failing: false,
    fetchBlock: async (peer: string, ref: BlockRef, range: { start: number; end: number }) => {
      calls.push(`peer ${peer} ${ref.index}`);
      if (client.failing) throw new Error('connection refused');
      return { data: bytes(range.start, range.end, 2), servedFrom: 'disk' as const };
    },
  };
  const picker: PeerPicker = { pickPeer: () => owner, members: owner ? [{ url: owner, weight: 1 }] : [] };
  const ring = owner === undefined ? undefined : { picker: () => picker, reportFailure: (url: string) => reported.push(url), reportSlow: () => undefined };
  const fetcher = ringFetcher({
    store,
    client,
    ring: () => ring,
    isSelf: async (url) => self.includes(url),
    origin: { fetch: async (r) => (calls.push('origin'), bytes(r.start, r.end, 3)) },
    endpoint: 'http://s3',
    bucket: 'b',
    blockSize: BLOCK,
    logger: silentLogger(),
  });
  return { fetcher, calls, reported, client };
}

describe('ringFetcher', () => {
  it('reads every block from its own store when there is no ring, cut to the range', async () => {
    const { fetcher, calls } = setup(undefined);
    const data = await fetcher.fetch(request);
    expect(data).toEqual(bytes(110, 150, 1));
    expect(calls).toEqual(['store 1']);
  });

  it("reads its own blocks from its store and others' from their owner", async () => {
    const mine = setup('http://10.0.0.1:8080', ['http://10.0.0.1:8080']);
    expect(await mine.fetcher.fetch(request)).toEqual(bytes(110, 150, 1));
    expect(mine.calls).toEqual(['store 1']);
    const theirs = setup('http://10.0.0.2:8080', ['http://10.0.0.1:8080']);
    expect(await theirs.fetcher.fetch(request)).toEqual(bytes(110, 150, 2));
    expect(theirs.calls).toEqual(['peer http://10.0.0.2:8080 1']);
  });

  it('reads the origin when the owner fails, and reports the owner', async () => {
    const { fetcher, calls, reported, client } = setup('http://10.0.0.2:8080');
    client.failing = true;
    expect(await fetcher.fetch(request)).toEqual(bytes(110, 150, 3));
    expect(calls).toEqual(['peer http://10.0.0.2:8080 1', 'origin']);
    expect(reported).toEqual(['http://10.0.0.2:8080']);
  });
});

describe('isSelfMemo', () => {
  it('asks once per URL, and takes a failed check as "not this server"', async () => {
    let asked = 0;
    const isSelf = isSelfMemo(async (url) => {
      asked++;
      if (url.includes('bad')) throw new Error('lookup failed');
      return url.endsWith(':1');
    });
    expect(await Promise.all([isSelf('http://a:1'), isSelf('http://a:1'), isSelf('http://a:2'), isSelf('http://bad:1')])).toEqual([true, true, false, false]);
    expect(asked).toBe(3);
  });
});
