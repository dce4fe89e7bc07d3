// The RAM tier: blocks held as Buffers in a byte-bounded LRU. The buffers are kept as given, not copied:
// whoever puts a block hands it over and must not write into it afterwards (readers share it too).
import { ByteLru } from '../../util/byte-lru';
import type { Tier, TierStats } from './tier';

/** A Tier in process memory whose blocks never total more than `capacityBytes`. */
export class RamTier implements Tier {
  readonly name = 'ram';
  readonly stats: TierStats = { hits: 0, misses: 0, evictions: 0, corruptions: 0, rejections: 0 };
  private readonly blocks: ByteLru<Buffer>;

  constructor(readonly capacityBytes: number) {
    if (!(capacityBytes >= 0)) throw new Error(`RAM tier capacity ${capacityBytes} bytes: it must be zero or more`);
    this.blocks = new ByteLru<Buffer>(capacityBytes, () => void this.stats.evictions++);
  }

  get usedBytes(): number {
    return this.blocks.bytes;
  }

  get blockCount(): number {
    return this.blocks.size;
  }

  async get(id: string): Promise<Buffer | undefined> {
    const data = this.blocks.get(id);
    if (data === undefined) this.stats.misses++;
    else this.stats.hits++;
    return data;
  }

  has(id: string): boolean {
    return this.blocks.has(id);
  }

  async put(id: string, data: Buffer): Promise<void> {
    if (data.length > this.capacityBytes) {
      this.stats.rejections++;
      return;
    }
    this.blocks.set(id, data);
  }

  async delete(id: string): Promise<void> {
    this.blocks.delete(id);
  }
}
