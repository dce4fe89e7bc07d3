// The cache server's flags against the machine it runs on, with the machine's facts injected: --ram-bytes above
// the memory the process can have, --disk-bytes above what the disk's file system holds (and the ring weight it
// then announces), and a --peers list without the server itself.
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { s3MountEnv } from '../../e2e/support/mount';
import { freePort } from '../../e2e/support/s3-server';
import { testStores } from '../../e2e/support/test-stores';
import { parseCacheServerConfig } from '../config/cache';
import { capturingLogger, silentLogger } from '../log/logger';
import { staticMembership } from '../cache/membership/static';
import { PeerClient } from '../cache/peer-client';
import { weightOf } from '../cache/ring';
import { startCache, type MachineFacts, type RunningCache } from './cache-server';

// Real processes (node, helm) start slowly on a loaded machine: no test here may fail on jest's 5 s default.
jest.setTimeout(60_000);

const GiB = 1024 ** 3;
const TOKEN = 'bounds-token-0123456789abcdef';

describe('cache server flags against the machine', () => {
  const stores = testStores('cache-bounds');
  const base = fs.mkdtempSync(path.join(tmpdir(), 'granary-cache-bounds-'));
  const tokenFile = path.join(base, 'token');
  fs.writeFileSync(tokenFile, `${TOKEN}\n`);
  const client = new PeerClient({ token: TOKEN });
  const running: RunningCache[] = [];

  /** A 24 GiB machine whose disks have `availableBytes` free, with one address, 10.0.0.5, named node-a. */
  const machine = (availableBytes = 1e15): MachineFacts => ({
    memoryLimit: () => ({ bytes: 24 * GiB, source: 'MemTotal (/proc/meminfo)' }),
    statfs: async () => ({ availableBytes }),
    self: { interfaceAddresses: ['127.0.0.1', '10.0.0.5'], hostname: 'node-a', resolve: async () => [] },
  });
  const start = async (input: Partial<Parameters<typeof parseCacheServerConfig>[0]>, facts: MachineFacts, logger = silentLogger()) => {
    const config = parseCacheServerConfig({ listen: '127.0.0.1:0', ramBytes: 64 * 1024 * 1024, tokenFile, ...input });
    const cache = await startCache(config, { logger, env: s3MountEnv(stores.server), machine: facts });
    running.push(cache);
    return cache;
  };

  afterAll(async () => {
    await Promise.all(running.map((cache) => cache.stop()));
    client.close();
    fs.rmSync(base, { recursive: true, force: true });
  });

  it('refuses --ram-bytes above the memory the process can have, naming the flag, the value and the machine', async () => {
    await expect(start({ ramBytes: 100 * GiB }, machine())).rejects.toThrow(/^--ram-bytes 100 GiB is more memory than this process can have: MemTotal \(\/proc\/meminfo\) is 24 GiB/);
  });

  it('lowers --disk-bytes to what the file system holds, warns once naming the flag, and announces that as its ring weight', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const cache = await start({ diskDir: path.join(base, 'disk'), diskBytes: 10 * 1024 * GiB, diskFreeFloorBytes: 5 * GiB }, machine(77 * GiB), capturingLogger(lines, 'info'));
    const url = `http://${cache.address}`;
    const info = await client.info(url);
    expect(info.diskBytes).toBe(72 * GiB);
    expect(info.capacityBytes).toBe(info.ramBytes + 72 * GiB);
    const warnings = lines.filter((line) => line.level === 40 && /--disk-bytes/.test(String(line.msg)));
    expect(warnings.map((line) => line.msg)).toEqual([expect.stringMatching(/^--disk-bytes 10 TiB is more than the filesystem of .* 77 GiB free .* at most 72 GiB/)]);

    // What a mount's ring makes of it: the weight of 72 GiB and a bit, not of 10 TiB.
    const membership = staticMembership([url], (peer, signal) => client.info(peer, signal), silentLogger());
    try {
      await membership.ready();
      expect(membership.picker().members).toEqual([{ url, weight: weightOf(info.capacityBytes) }]);
      expect(weightOf(info.capacityBytes)).toBeLessThan(weightOf(10 * 1024 * GiB));
    } finally {
      membership.close();
    }
  });

  it('exits with one line naming --disk-dir when it is a regular file', async () => {
    const file = path.join(base, 'not-a-dir');
    fs.writeFileSync(file, 'x');
    await expect(start({ diskDir: file, diskBytes: GiB }, machine())).rejects.toThrow(`--disk-dir ${file} cannot hold the disk tier: it is a regular file, not a directory`);
  });

  it('warns once, naming --peers and the listen address, when --peers does not list the server itself, and not when it does', async () => {
    const port = await freePort();
    const lines: Array<Record<string, unknown>> = [];
    await start({ listen: `127.0.0.1:${port}`, discovery: { peers: ['http://10.0.0.6:7070', `http://10.0.0.5:${port + 1}`] } }, machine(), capturingLogger(lines, 'info'));
    const warnings = lines.filter((line) => line.level === 40 && /--peers/.test(String(line.msg)));
    expect(warnings.map((line) => line.msg)).toEqual([expect.stringContaining(`--peers does not list this cache server (listening on 127.0.0.1:${port};`)]);

    const other = await freePort();
    const listed: Array<Record<string, unknown>> = [];
    await start({ listen: `0.0.0.0:${other}`, discovery: { peers: ['http://10.0.0.6:7070', `http://10.0.0.5:${other}`] } }, machine(), capturingLogger(listed, 'info'));
    expect(listed.filter((line) => /--peers/.test(String(line.msg)))).toEqual([]);
  });
});
