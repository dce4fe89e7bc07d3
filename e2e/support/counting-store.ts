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
      if (property === 'getInto') {
        return (key: string, into: Buffer, options: Parameters<ObjectStore['getInto']>[2]) => {
          gets.push(options.range);
          return target.getInto(key, into, options);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store: wrapped, gets };
}
