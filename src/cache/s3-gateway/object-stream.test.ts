import type { BlockFetcher, BlockRequest } from '../../blocks/block-fetcher';
import { objectBytes, type ObjectVersion } from './object-stream';

const version: ObjectVersion = { key: 'model.bin', etag: 'e1', size: 1000 };

/** Bytes whose value is their offset (mod 251), so a misplaced piece shows. */
const byteAt = (offset: number) => offset % 251;

/** A fetcher answering from the pattern, each fetch held until released, recording what it was asked. */
class HeldFetcher implements BlockFetcher {
  readonly asked: BlockRequest[] = [];
  readonly waiting: Array<() => void> = [];
  inFlight = 0;
  mostInFlight = 0;
  failAt?: number;

  async fetch(request: BlockRequest): Promise<Buffer> {
    this.asked.push(request);
    this.inFlight++;
    this.mostInFlight = Math.max(this.mostInFlight, this.inFlight);
    try {
      await new Promise<void>((resolve, reject) => {
        this.waiting.push(resolve);
        request.signal?.addEventListener('abort', () => reject(request.signal?.reason as Error), { once: true });
      });
      if (request.start === this.failAt) throw new Error(`no block at ${request.start}`);
      return Buffer.from(Array.from({ length: request.end - request.start }, (_, i) => byteAt(request.start + i)));
    } finally {
      this.inFlight--;
    }
  }

  releaseAll(): void {
    while (this.waiting.length > 0) this.waiting.shift()?.();
  }
}

/** Reads the whole iteration, releasing held fetches as it waits. */
async function drain(fetcher: HeldFetcher, pieces: AsyncGenerator<Buffer>): Promise<Buffer> {
  const timer = setInterval(() => fetcher.releaseAll(), 1);
  try {
    const chunks: Buffer[] = [];
    for await (const piece of pieces) chunks.push(piece);
    return Buffer.concat(chunks);
  } finally {
    clearInterval(timer);
  }
}

describe('objectBytes', () => {
  it('yields exactly [start, end), one fetch per block, each inside its block and naming the version', async () => {
    const fetcher = new HeldFetcher();
    const bytes = await drain(fetcher, objectBytes({ fetcher, version, start: 150, end: 731, blockSize: 256, readahead: 2 }));
    expect(bytes.length).toBe(581);
    expect([...bytes].every((value, i) => value === byteAt(150 + i))).toBe(true);
    expect(fetcher.asked.map(({ start, end }) => [start, end])).toEqual([[150, 256], [256, 512], [512, 731]]);
    for (const request of fetcher.asked) expect(request).toMatchObject({ key: 'model.bin', etag: 'e1', objectSize: 1000 });
  });

  it('keeps at most 1 + readahead fetches in flight', async () => {
    const fetcher = new HeldFetcher();
    await drain(fetcher, objectBytes({ fetcher, version, start: 0, end: 1000, blockSize: 100, readahead: 3 }));
    expect(fetcher.asked).toHaveLength(10);
    expect(fetcher.mostInFlight).toBe(4);
  });

  it('aborts the fetches in flight when the reader stops early', async () => {
    const fetcher = new HeldFetcher();
    const pieces = objectBytes({ fetcher, version, start: 0, end: 1000, blockSize: 100, readahead: 3 });
    const first = pieces.next();
    fetcher.waiting.shift()?.(); // only the first block comes back
    expect((await first).value).toHaveLength(100);
    expect(fetcher.inFlight).toBe(3);
    await pieces.return(undefined);
    await new Promise((resolve) => setImmediate(resolve));
    expect(fetcher.inFlight).toBe(0);
    expect(fetcher.asked.slice(1).every((request) => request.signal?.aborted)).toBe(true);
  });

  it('fails the iteration with the failed block, after the pieces before it', async () => {
    const fetcher = new HeldFetcher();
    fetcher.failAt = 200;
    const seen: number[] = [];
    const reading = (async () => {
      for await (const piece of objectBytes({ fetcher, version, start: 0, end: 1000, blockSize: 100, readahead: 1 })) seen.push(piece.length);
    })();
    const timer = setInterval(() => fetcher.releaseAll(), 1);
    await expect(reading).rejects.toThrow('no block at 200');
    clearInterval(timer);
    expect(seen).toEqual([100, 100]);
  });

  it('yields nothing for an empty range', async () => {
    const fetcher = new HeldFetcher();
    expect(await drain(fetcher, objectBytes({ fetcher, version, start: 5, end: 5, blockSize: 100, readahead: 1 }))).toHaveLength(0);
    expect(fetcher.asked).toHaveLength(0);
  });
});
