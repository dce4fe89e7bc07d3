import { RangeSet } from './range-set';

describe('RangeSet', () => {
  it('merges touching and overlapping ranges', () => {
    const set = new RangeSet();
    set.add(10, 20);
    set.add(30, 40);
    set.add(20, 25);
    set.add(35, 50);
    set.add(5, 5);
    expect(set.toArray()).toEqual([[10, 25], [30, 50]]);
    set.add(0, 100);
    expect(set.toArray()).toEqual([[0, 100]]);
  });

  it('lists the gaps of a range', () => {
    const set = new RangeSet();
    expect(set.gaps(0, 10)).toEqual([[0, 10]]);
    set.add(2, 4);
    set.add(6, 8);
    expect(set.gaps(0, 10)).toEqual([[0, 2], [4, 6], [8, 10]]);
    expect(set.gaps(3, 7)).toEqual([[4, 6]]);
    expect(set.gaps(2, 4)).toEqual([]);
    expect(set.gaps(5, 5)).toEqual([]);
  });
});
