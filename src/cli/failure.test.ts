import * as assert from 'node:assert';
import { failureReport, isBug } from './failure';

describe('isBug', () => {
  it('takes the errors granary reports on purpose for expected, faults of the code for bugs', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    class MountpointError extends Error {}
    expect([new Error('create the directory first'), refused, new MountpointError('busy')].map(isBug)).toEqual([false, false, false]);
    let failedAssert: unknown;
    try {
      assert.ok(false);
    } catch (error) {
      failedAssert = error;
    }
    const bugs = [new TypeError("Cannot read properties of undefined (reading 'size')"), new RangeError('Invalid array length'), new ReferenceError('x is not defined'), failedAssert, 'a thrown string'];
    expect(bugs.map(isBug)).toEqual([true, true, true, true, true]);
  });
});

describe('failureReport', () => {
  it('is one line for an expected error', () => {
    expect(failureReport(new Error('mountpoint /mnt/x does not exist: create the directory first'), { debug: false })).toBe('granary: mountpoint /mnt/x does not exist: create the directory first\n');
  });

  it('keeps a message of several lines on one', () => {
    expect(failureReport(new Error('the store said:\n  NoSuchBucket\n'), { debug: false })).toBe('granary: the store said: NoSuchBucket\n');
  });

  it('adds the stack and the causes at debug level', () => {
    const error = new Error('cannot use s3://bkt', { cause: new Error('connect ECONNREFUSED') });
    const lines = failureReport(error, { debug: true }).trimEnd().split('\n');
    expect(lines[0]).toBe('granary: cannot use s3://bkt');
    expect(lines[1]).toBe('Error: cannot use s3://bkt');
    expect(lines.some((line) => /^\s+at /.test(line))).toBe(true);
    expect(lines.some((line) => line.includes('[cause]: Error: connect ECONNREFUSED'))).toBe(true);
  });

  it('says a bug is one and shows its stack at any level', () => {
    const lines = failureReport(new TypeError("Cannot read properties of undefined (reading 'size')"), { debug: false }).trimEnd().split('\n');
    expect(lines[0]).toBe("granary: unexpected error (a bug in granary; please report it with this output): Cannot read properties of undefined (reading 'size')");
    expect(lines[1]).toBe("TypeError: Cannot read properties of undefined (reading 'size')");
    expect(lines[2]).toMatch(/^\s+at /);
  });
});
