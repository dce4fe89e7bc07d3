// Seeded randomness, so that every side reads the same offsets in every run.

/** A seeded generator of floats in [0, 1) (mulberry32): small, fast, and the same sequence for the same seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Alignment of random read offsets (one page, as a data loader's reads would be). */
export const OFFSET_ALIGNMENT = 4096;

/** `count` page-aligned offsets at which a read of `length` bytes fits inside `size` bytes. */
export function randomOffsets(seed: number, count: number, size: number, length: number): number[] {
  const next = seededRandom(seed);
  const slots = Math.floor((size - length) / OFFSET_ALIGNMENT) + 1;
  return Array.from({ length: count }, () => Math.floor(next() * slots) * OFFSET_ALIGNMENT);
}
