import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readDeviceOnWorker } from './device-reader';

// A regular file stands in for /dev/fuse: read(2) of `bufferSize` bytes returns one "request" of that size, and the
// end of the file ends the connection as a zero-length read does.
jest.setTimeout(30_000);

describe('readDeviceOnWorker', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-device-reader-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function readAll(fd: number, bufferSize: number): Promise<{ requests: Buffer[]; error?: NodeJS.ErrnoException }> {
    return new Promise((resolve) => {
      const requests: Buffer[] = [];
      readDeviceOnWorker(fd, bufferSize, { request: (request) => requests.push(request), end: (error) => resolve({ requests, error }) });
    });
  }

  function fileOf(requests: Buffer[]): number {
    const file = path.join(dir, 'device');
    fs.writeFileSync(file, Buffer.concat(requests));
    return fs.openSync(file, 'r');
  }

  it('hands over every request whole and in order, small ones copied out, big ones in their own buffer', async () => {
    for (const size of [100, 128 * 1024]) {
      const sent = [0, 1, 2].map((n) => Buffer.alloc(size, n + 1));
      const fd = fileOf(sent);
      const { requests, error } = await readAll(fd, size);
      fs.closeSync(fd);
      expect(error).toBeUndefined();
      expect(requests).toEqual(sent);
      // Each request owns its memory: none is a view into a buffer the worker reads into again.
      expect(new Set(requests.map((request) => request.buffer)).size).toBe(3);
    }
  });

  it('takes big requests back once their handler is done, and reads later requests into them', async () => {
    const size = 128 * 1024;
    const sent = [0, 1, 2, 3].map((n) => Buffer.alloc(size, n + 1));
    const fd = fileOf(sent);
    const received: Buffer[] = [];
    const emptied: number[] = [];
    await new Promise<void>((resolve) => {
      readDeviceOnWorker(fd, size, {
        request: (request, recycle) => {
          received.push(Buffer.from(request));
          expect(recycle).toBeDefined();
          recycle?.();
          // Handed back: this thread's view of it is gone (detached), it cannot be read or written here any more.
          emptied.push(request.length);
        },
        end: () => resolve(),
      });
    });
    fs.closeSync(fd);
    expect(received).toEqual(sent);
    expect(emptied).toEqual([0, 0, 0, 0]);
  });

  it('ends with the read error when reading fails for another reason than the connection ending', async () => {
    const fd = fs.openSync(dir, 'r');
    const { requests, error } = await readAll(fd, 4096);
    fs.closeSync(fd);
    expect(requests).toEqual([]);
    expect(error?.code).toBe('EISDIR');
    expect(error?.message).toMatch(/reading \/dev\/fuse failed/);
  });
});
