import type { ByteRange, ObjectStore } from '../../src/objectstore/store';

/** Wraps a store so that the range of every ranged GET is recorded, to count requests and bytes fetched. */
export function countingGets(store: ObjectStore): { store: ObjectStore; gets: ByteRange[] } {
  const gets: ByteRange[] = [];
  const wrapped = new Proxy(store, {
    get(target, property) {
      if (property === 'get') {
        return (key: string, options: Parameters<ObjectStore['get']>[1]) => {
          if (options?.range) gets.push(options.range);
          return target.get(key, options);
        };
      }
      if (property === 'getInto' && target.getInto) {
        const getInto = target.getInto.bind(target);
        // A direct read that the store declines (undefined) is followed by a get(), counted there.
        return async (key: string, into: Buffer, options: Parameters<NonNullable<ObjectStore['getInto']>>[2]) => {
          const result = await getInto(key, into, options);
          if (result) gets.push(options.range);
          return result;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store: wrapped, gets };
}
