// `granary cache serve` checks its flags against the machine it runs on, as a cache pod would meet them: more RAM
// than the machine has is refused with one line, a --disk-dir that is a file too, and more disk than the disk
// dir's file system holds (a 64 MiB tmpfs made for the test) is lowered to what it holds, in the tier and in the
// capacity the server announces to the ring.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMemoryLimit } from '../../src/system/memory-limit';
import { formatByteSize } from '../../src/config/size';
import { PeerClient } from '../../src/cache/peer-client';
import { builtCli } from '../support/built-cli';
import { startCacheServer, type CacheServerProcess } from '../support/cache-server';
import { s3MountEnv } from '../support/mount';
import { freePort, testS3 } from '../support/s3-server';
import { makeTemp, MiB, removeTemp, run } from './helpers';

jest.setTimeout(120_000);

const TOKEN = 'cache-bounds-token-0123456789';
const TMPFS_BYTES = 64 * MiB;

describe('granary cache serve against the machine it runs on', () => {
  const server = testS3();
  let base: string;
  let tokenFile: string;
  let tmpfs: string | undefined;
  let cache: CacheServerProcess | undefined;

  /** Runs `granary cache serve` with `args` to its end (it must exit on its own). */
  const serve = (args: string[]) => run(process.execPath, [builtCli(), 'cache', 'serve', '--listen', '127.0.0.1:0', '--token-file', tokenFile, ...args], { timeoutMs: 30_000, env: { PATH: process.env.PATH, ...s3MountEnv(server) } });

  beforeAll(() => {
    base = makeTemp('cache-bounds');
    tokenFile = path.join(base, 'token');
    fs.writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
  });

  afterAll(async () => {
    await cache?.stop();
    if (tmpfs) await run('umount', [tmpfs]);
    removeTemp(base);
  });

  it('refuses --ram-bytes above the memory this machine (or its cgroup) gives the process, with one line and exit 1', async () => {
    const memory = readMemoryLimit();
    if (memory === undefined) throw new Error('cannot read /proc/meminfo: this test needs Linux');
    const asked = memory.bytes + 1024 * MiB;
    const result = await serve(['--ram-bytes', String(asked)]);
    expect(result.code).toBe(1);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`granary: --ram-bytes ${formatByteSize(asked)} is more memory than this process can have: ${memory.source} is ${formatByteSize(memory.bytes)}; lower --ram-bytes`);
  });

  it('exits 1 with one line naming --disk-dir and the path when it is a regular file', async () => {
    const file = path.join(base, 'a-file');
    fs.writeFileSync(file, 'not a directory');
    const result = await serve(['--disk-dir', file, '--disk-bytes', '1GiB']);
    expect({ code: result.code, stderr: result.stderr.trimEnd() }).toEqual({ code: 1, stderr: `granary: --disk-dir ${file} cannot hold the disk tier: it is a regular file, not a directory; give a writable directory (or no --disk-dir for RAM only)` });
  });

  it('lowers --disk-bytes 10TiB to what a 64 MiB file system holds, warns once, and announces that capacity', async () => {
    tmpfs = path.join(base, 'small-disk');
    fs.mkdirSync(tmpfs);
    const mounted = await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', tmpfs]);
    if (mounted.code !== 0) throw new Error(`mounting a tmpfs failed (this test needs root): ${mounted.stderr}`);
    const port = await freePort();
    cache = await startCacheServer({ host: '127.0.0.1', port, ramBytes: '16MiB', diskDir: tmpfs, diskBytes: '10TiB', peers: [`http://127.0.0.1:${port}`], tokenFile, env: s3MountEnv(server) });
    const client = new PeerClient({ token: TOKEN });
    try {
      const info = await client.info(cache.url);
      // What the tmpfs holds once the tier has laid out its folders and format file (statfs after the server started).
      const stats = fs.statfsSync(tmpfs);
      expect(info.diskBytes).toBeLessThanOrEqual(TMPFS_BYTES);
      expect(info.diskBytes).toBeGreaterThanOrEqual(stats.bavail * stats.bsize);
      expect(info.capacityBytes).toBe(info.ramBytes + info.diskBytes);
      expect(await cache.metric('granary_cache_capacity_bytes', 'tier="disk"')).toBe(info.diskBytes);
      const warnings = cache.log().split('\n').filter((line) => line.includes('--disk-bytes'));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0] ?? '{}')).toMatchObject({ level: 40, msg: expect.stringMatching(new RegExp(`^--disk-bytes 10 TiB is more than the filesystem of ${tmpfs} can hold`)) });
    } finally {
      client.close();
    }
  });
});
