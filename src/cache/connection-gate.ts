// The cache server's door: how many connections one source address may hold open, counted at accept and
// enforced before the HTTP parser sees a byte, and how many the process's file descriptors allow in all.
// Leaf module: imports nothing from cache/.
import * as fs from 'node:fs';
import type * as net from 'node:net';

/**
 * Counts the open connections of each source address and refuses one over the cap at once: the socket is
 * destroyed in the server's 'connection' event, before any byte of it is read or parsed.
 */
export class ConnectionGate {
  /** Connections refused since start, for metrics. */
  refused = 0;
  private readonly byAddress = new Map<string, number>();
  private total = 0;

  constructor(readonly maxPerAddress: number) {}

  /** Connections open now (admitted and not yet closed). */
  get open(): number {
    return this.total;
  }

  /** Admits `socket`, counting it until it closes, or destroys it; returns whether it was admitted. */
  admit(socket: net.Socket): boolean {
    const address = socket.remoteAddress;
    const held = address === undefined ? 0 : (this.byAddress.get(address) ?? 0);
    // No address: the peer is already gone.
    if (address === undefined || held >= this.maxPerAddress) {
      this.refused++;
      socket.destroy();
      return false;
    }
    this.byAddress.set(address, held + 1);
    this.total++;
    socket.once('close', () => {
      this.total--;
      const left = (this.byAddress.get(address) ?? 1) - 1;
      if (left > 0) this.byAddress.set(address, left);
      else this.byAddress.delete(address);
    });
    return true;
  }
}

/** File descriptors a cache server keeps for itself beyond its client connections: disk tier files, origin sockets, the rest. */
export const RESERVED_FILE_DESCRIPTORS = 2048;

/** The process's soft limit of open files (RLIMIT_NOFILE) from /proc/self/limits; undefined where that cannot be read. */
export function openFileLimit(limits = '/proc/self/limits'): number | undefined {
  try {
    const line = fs.readFileSync(limits, 'utf8').split('\n').find((entry) => entry.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === undefined || !/^\d+$/.test(soft) ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/**
 * The connection cap that fits `fileLimit` (Node raises its soft limit to the hard one at start): `wanted`, or
 * the limit minus RESERVED_FILE_DESCRIPTORS when that is lower, so that refusing at accept still has a
 * descriptor to accept with and the disk tier and the origin never hit EMFILE.
 */
export function fitToFileLimit(wanted: number, fileLimit: number | undefined): number {
  if (fileLimit === undefined) return wanted;
  return Math.max(1, Math.min(wanted, fileLimit - RESERVED_FILE_DESCRIPTORS));
}
