// Whether a static --peers list names the cache server reading it. A server missing from the list still serves the
// mounts that reach it, but their rings (built from the same list) never give it a block: what it fills it fills
// for nobody, and a warm-up through it loads into a ring that differs from the mounts'.

/** How this server can be reached: the address it listens on and what the machine calls itself. */
export interface SelfAddress {
  /** The host of --listen: an address, a name, or 0.0.0.0 / :: (every interface). */
  listenHost: string;
  /** The port it listens on. */
  port: number;
  /** The machine's interface addresses (os.networkInterfaces), for a wildcard listen host. */
  interfaceAddresses: readonly string[];
  /** The machine's host name (os.hostname). */
  hostname: string;
  /** The addresses a host name resolves to (dns.lookup, all); [] when it does not resolve. */
  resolve: (name: string) => Promise<string[]>;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);

/** An address without IPv6 brackets, IPv4-mapped IPv6 as plain IPv4, lower case. */
function normalAddress(address: string): string {
  const bare = address.replace(/^\[|\]$/g, '').toLowerCase();
  return bare.startsWith('::ffff:') && bare.includes('.') ? bare.slice('::ffff:'.length) : bare;
}

const isAddress = (host: string): boolean => /^[\d.]+$/.test(host) || host.includes(':');

const isLoopback = (address: string): boolean => address.startsWith('127.') || address === '::1';

/** The addresses this server answers on, normalised: the listen host, or every interface's when it is a wildcard. */
function ownAddresses(self: SelfAddress): Set<string> {
  const host = normalAddress(self.listenHost);
  return new Set(WILDCARDS.has(host) ? self.interfaceAddresses.map(normalAddress) : [host]);
}

/** The names this server answers to without a lookup: the listen host when it is a name, and, on a wildcard, the host name. */
function ownNames(self: SelfAddress): Set<string> {
  const host = self.listenHost.toLowerCase();
  if (!WILDCARDS.has(normalAddress(host))) return new Set(isAddress(host) ? [] : [host]);
  const name = self.hostname.toLowerCase();
  return new Set([name, name.split('.')[0] ?? name, 'localhost']);
}

/**
 * Whether `peers` (canonical http(s)://host:port URLs) name this server: one with its port and a host that is one of
 * its addresses, one of its names, or a name that resolves to one of its addresses.
 */
export async function peersListSelf(peers: readonly string[], self: SelfAddress): Promise<boolean> {
  const addresses = ownAddresses(self);
  const names = ownNames(self);
  // A wildcard listen answers on the whole loopback range, not only on the loopback interface's one address.
  const wildcard = WILDCARDS.has(normalAddress(self.listenHost));
  for (const peer of peers) {
    const url = new URL(peer);
    if (Number(url.port) !== self.port) continue;
    const host = normalAddress(url.hostname);
    if (isAddress(host) ? addresses.has(host) || (wildcard && isLoopback(host)) : names.has(host)) return true;
    if (!isAddress(host) && (await self.resolve(host).catch(() => [])).some((address) => addresses.has(normalAddress(address)))) return true;
  }
  return false;
}

/** The warning for a --peers list that does not name this server. */
export function selfMissingWarning(listen: string, peers: readonly string[]): string {
  return (
    `--peers does not list this cache server (listening on ${listen}; --peers ${peers.join(',')}): the mounts' ring, built ` +
    'from the same list, never sends it a block, so what it caches it caches for nobody, and its own ring disagrees with ' +
    "theirs; add this server's URL (http://ITS-ADDRESS:PORT) to --peers on every server and mount"
  );
}
