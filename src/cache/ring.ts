// The consistent-hash ring: which cache server owns a block. Leaf module over `hashring` (ketama).
import HashRing from 'hashring';

/** One cache server in the ring: its base URL and its weight (its capacity, in GiB, at least 1). */
export interface RingMember {
  url: string;
  weight: number;
}

/** Picks the owner of a block id (groupcache's PeerPicker): a ring, or NoPeers when there is none. */
export interface PeerPicker {
  /** The base URL of the cache server that owns `id`, or undefined when there is no member. */
  pickPeer(id: string): string | undefined;
  /** The members, sorted by URL. */
  readonly members: readonly RingMember[];
}

/** The null picker: no cache servers, every block comes from the object store. */
export const NoPeers: PeerPicker = { pickPeer: () => undefined, members: [] };

/** The weight of a member with `capacityBytes` of cache: one per GiB, at least 1. */
export function weightOf(capacityBytes: number): number {
  return Math.max(1, Math.round(capacityBytes / 2 ** 30));
}

/**
 * A ketama ring over `members`, each given a share proportional to its weight. Two rings built from the
 * same members agree on every owner, whatever the order given; a member joining or leaving moves only
 * about its share of the ids.
 */
export class Ring implements PeerPicker {
  readonly members: readonly RingMember[];
  private readonly ring: HashRing | undefined;

  constructor(members: readonly RingMember[]) {
    const unique = new Map<string, RingMember>();
    for (const member of members) {
      if (!(member.weight > 0)) throw new Error(`ring member ${member.url} has weight ${member.weight}: weights must be positive`);
      unique.set(member.url, member);
    }
    this.members = [...unique.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
    if (this.members.length === 0) return;
    const servers: Record<string, { weight: number }> = {};
    for (const member of this.members) servers[member.url] = { weight: member.weight };
    this.ring = new HashRing(servers, 'md5');
  }

  pickPeer(id: string): string | undefined {
    return this.ring?.get(id);
  }

  /** Whether the two rings have the same members with the same weights. */
  sameAs(other: PeerPicker): boolean {
    if (other.members.length !== this.members.length) return false;
    return this.members.every((member, i) => other.members[i]?.url === member.url && other.members[i]?.weight === member.weight);
  }
}
