// Object store reads for the direct side and for checking what the mounts wrote.
import { createHash } from 'node:crypto';
import type { ByteRange, ObjectStore } from '../../src/objectstore/store';

/** Reads an object, or a range of it, into one Buffer. */
export async function getBytes(store: Pick<ObjectStore, 'get'>, key: string, range?: ByteRange): Promise<Buffer> {
  const result = await store.get(key, range ? { range } : {});
  const length = result.range.end - result.range.start;
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  for await (const chunk of result.body) {
    const data = chunk as Buffer;
    if (filled + data.length > length) throw new Error(`get of ${key} returned more than the ${length} bytes it announced`);
    data.copy(buffer, filled);
    filled += data.length;
  }
  if (filled !== length) throw new Error(`get of ${key} returned ${filled} of ${length} bytes`);
  return buffer;
}

/**
 * Reads `size` bytes of an object as ranged GETs of `rangeBytes`, `parallel` in flight, and hands each range to
 * `consume` in order (so that a hash sees the bytes in sequence); returns the bytes consumed.
 */
export async function readInOrder(store: Pick<ObjectStore, 'get'>, key: string, size: number, rangeBytes: number, parallel: number, consume: (data: Buffer) => void): Promise<number> {
  const count = Math.ceil(size / rangeBytes);
  const pending = new Map<number, Promise<Buffer>>();
  let next = 0;
  let total = 0;
  for (let index = 0; index < count; index += 1) {
    while (next < count && next < index + parallel) {
      const start = next * rangeBytes;
      const request = getBytes(store, key, { start, end: Math.min(start + rangeBytes, size) });
      request.catch(() => undefined); // observed below, in order; this keeps an early failure from being unhandled
      pending.set(next, request);
      next += 1;
    }
    const data = await pending.get(index)!;
    pending.delete(index);
    consume(data);
    total += data.length;
  }
  return total;
}

/** sha256 (hex) and size of a whole object, read with ranged GETs in parallel. */
export async function objectSha256(store: ObjectStore, key: string, rangeBytes: number, parallel: number): Promise<{ sha256: string; size: number }> {
  const { size } = await store.head(key);
  const hash = createHash('sha256');
  await readInOrder(store, key, size, rangeBytes, parallel, (data) => hash.update(data));
  return { sha256: hash.digest('hex'), size };
}
