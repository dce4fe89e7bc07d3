// Types for the parts of `hashring` (ketama consistent hashing) that src/cache/ring.ts uses; the package ships none.
declare module 'hashring' {
  type Servers = string | string[] | Record<string, number | { weight?: number; vnodes?: number }>;

  /** A ketama ring of servers. */
  class HashRing {
    constructor(servers: Servers, algorithm?: string, options?: Record<string, unknown>);
    /** The server that owns `key`, or undefined when the ring is empty. */
    get(key: string): string | undefined;
  }

  export = HashRing;
}
