// A set of byte ranges, to know which parts of a staging file already hold their final bytes.

/** Disjoint, sorted, merged [start, end) ranges. */
export class RangeSet {
  private ranges: Array<[number, number]> = [];

  /** Adds [start, end), merging with what touches it. */
  add(start: number, end: number): void {
    if (end <= start) return;
    const kept: Array<[number, number]> = [];
    let merged: [number, number] = [start, end];
    for (const range of this.ranges) {
      if (range[1] < merged[0] || range[0] > merged[1]) kept.push(range);
      else merged = [Math.min(range[0], merged[0]), Math.max(range[1], merged[1])];
    }
    kept.push(merged);
    this.ranges = kept.sort((a, b) => a[0] - b[0]);
  }

  /** The sub-ranges of [start, end) not in the set, in order. */
  gaps(start: number, end: number): Array<[number, number]> {
    const gaps: Array<[number, number]> = [];
    let cursor = start;
    for (const [rangeStart, rangeEnd] of this.ranges) {
      if (rangeEnd <= cursor) continue;
      if (rangeStart >= end) break;
      if (rangeStart > cursor) gaps.push([cursor, rangeStart]);
      cursor = Math.max(cursor, rangeEnd);
      if (cursor >= end) break;
    }
    if (cursor < end) gaps.push([cursor, end]);
    return gaps;
  }

  /** The ranges, for tests and logs. */
  toArray(): Array<[number, number]> {
    return this.ranges.map(([start, end]) => [start, end]);
  }
}
