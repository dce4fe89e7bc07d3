// Attack: a slowloris against a real `granary cache serve` process with its default bounds. An attacker
// process holds 2,000 connections from one address, each sending its headers a line at a time and never
// ending them, and dials again whenever the server closes one, for 60 s. Meanwhile a reader (with the token,
// from another address) keeps reading blocks: every byte must be right, first-byte latency sub-second, and
// the server's descriptors and memory bounded by its caps, not by the attack.
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { CACHE_SERVER_LIMITS } from '../../src/config/cache';
import { PeerClient } from '../../src/cache/peer-client';
import { authorization } from '../../src/cache/protocol';
import { sampleUsage, openFileDescriptors, residentBytes } from '../support/process-usage';
import type { AttackSummary } from '../support/slowloris';
import { startCacheFixture, type CacheFixture } from './cache-fixture';
import { MiB } from './helpers';

jest.setTimeout(300_000);

const ATTACK = { from: '127.0.0.21', connections: 2000, dribbleMs: 2000, redialMs: 1000, seconds: 60 };
/** Descriptors the attacker process may open: its connections and then some (raised explicitly, whatever jest's limit). */
const ATTACKER_FILE_LIMIT = 8192;
/** Pause between two reads of the legitimate reader. */
const READ_PAUSE_MS = 25;

/** The attacker, as a process of its own with its own descriptor limit. */
function startAttacker(fixture: CacheFixture): { firstRound: Promise<void>; done: Promise<AttackSummary> } {
  const script = path.join(__dirname, '..', '..', 'dist', 'e2e', 'support', 'slowloris.js');
  const options = JSON.stringify({ host: fixture.host, port: fixture.port, ...ATTACK });
  const child = spawn('prlimit', [`--nofile=${ATTACKER_FILE_LIMIT}:${ATTACKER_FILE_LIMIT}`, '--', process.execPath, script, options], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let onFirstRound: () => void = () => undefined;
  const firstRound = new Promise<void>((resolve) => (onFirstRound = resolve));
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.includes('first round dialled')) onFirstRound();
  });
  const done = new Promise<AttackSummary>((resolve, reject) => {
    child.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(stdout) as AttackSummary);
      else reject(new Error(`the attacker exited ${code}: ${stderr.slice(-2000)}`));
    });
  });
  return { firstRound, done };
}

/** One GET BLOCK with the token on `agent` (false: a new connection): the time to the response head, and whether the body was right. */
function timedRead(fixture: CacheFixture, index: number, agent: http.Agent | false): Promise<{ firstByteMs: number; correct: boolean }> {
  const ref = fixture.ref(index);
  const range = fixture.rangeOf(ref);
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const request = http.get({ host: fixture.host, port: fixture.port, path: fixture.blockPath(ref), agent, headers: { authorization: authorization(fixture.token) } }, (response) => {
      const firstByteMs = Number(process.hrtime.bigint() - started) / 1e6;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ firstByteMs, correct: response.statusCode === 200 && Buffer.concat(chunks).equals(fixture.content.subarray(range.start, range.end)) }));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

function percentile(values: number[], share: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)] ?? NaN;
}

describe('a cache server under a slowloris attack of 2,000 connections for 60 s', () => {
  let fixture: CacheFixture;

  beforeAll(async () => {
    fixture = await startCacheFixture('cache-slowloris', { blocks: 3 });
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it('keeps serving right bytes with sub-second first-byte latency, its descriptors and memory bounded', async () => {
    const blocks = 4;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const mountClient = new PeerClient({ token: fixture.token });
    const url = `http://${fixture.host}:${fixture.port}`;
    try {
      // Warm: every block in RAM, the reader's connections open; then the baseline.
      for (let index = 0; index < blocks; index++) expect((await timedRead(fixture, index, agent)).correct).toBe(true);
      const baseline = { fds: openFileDescriptors(fixture.pid), rssBytes: residentBytes(fixture.pid) };

      const attacker = startAttacker(fixture);
      await attacker.firstRound;
      const usage = sampleUsage(fixture.pid);
      let attacking = true;
      void attacker.done.finally(() => (attacking = false)).catch(() => undefined);

      const firstByte: number[] = [];
      let wrong = 0;
      let mountReads = 0;
      for (let read = 0; attacking; read++) {
        const index = read % blocks;
        // Every 10th read on a new connection (a client arriving during the attack), every 5th through the mounts' client.
        if (read % 5 === 4) {
          const ref = fixture.ref(index);
          const range = fixture.rangeOf(ref);
          const fetched = await mountClient.fetchBlock(url, ref, range);
          if (!fetched.data.equals(fixture.content.subarray(range.start, range.end))) wrong++;
          mountReads++;
        } else {
          const result = await timedRead(fixture, index, read % 10 === 0 ? false : agent);
          firstByte.push(result.firstByteMs);
          if (!result.correct) wrong++;
        }
        await new Promise((resolve) => setTimeout(resolve, READ_PAUSE_MS));
      }
      const summary = await attacker.done;
      const peaks = usage.stop();
      const refused = await fixture.cache.metric('granary_cache_refused_connections_total', 'cap="address"');
      const timedOut = await fixture.cache.metric('granary_cache_http_requests_total', 'code="408"');
      const p50 = percentile(firstByte, 0.5);
      const p99 = percentile(firstByte, 0.99);
      const max = Math.max(...firstByte);
      console.log(
        [
          `reads: ${firstByte.length} timed (first byte p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms) + ${mountReads} through PeerClient, ${wrong} wrong`,
          `attacker: ${JSON.stringify(summary)}`,
          `server: fds ${baseline.fds} before, peak ${peaks.peakFds}; RSS ${(baseline.rssBytes / MiB).toFixed(1)} MiB before, peak ${(peaks.peakRssBytes / MiB).toFixed(1)} MiB (${peaks.samples} samples); refused at accept ${refused}, answered 408 ${timedOut}`,
        ].join('\n'),
      );

      // The reader: every block right, sub-second first bytes.
      expect(wrong).toBe(0);
      expect(firstByte.length).toBeGreaterThan(200);
      expect(p99).toBeLessThan(1000);
      // The attack really held its connections: the server kept the per-address cap's worth open at once,
      // refused the rest at accept, and closed every one that outlived the header timeout (with a 408).
      expect(summary.connected).toBeGreaterThanOrEqual(ATTACK.connections);
      expect(summary.peakOpen).toBeGreaterThanOrEqual(CACHE_SERVER_LIMITS.maxConnectionsPerAddress);
      expect(refused).toBeGreaterThan(0);
      expect(summary.timedOut).toBeGreaterThanOrEqual(CACHE_SERVER_LIMITS.maxConnectionsPerAddress);
      // Lifetimes are measured on the attacker's clock from its 'connect': the server checks its timeouts at
      // least every second, and the attacker sees a close late by up to its own worst event-loop delay. (A CI
      // run once measured 24.9 s: the server's accept queue, then Node's default 511, had overflowed and the
      // kernel made clients that believed themselves connected wait out SYN-ACK retransmits, 1 + 2 + 4 + 8 s.
      // The server's backlog now holds every connection this attacker can have in flight.)
      const headersDeadlineMs = CACHE_SERVER_LIMITS.headersTimeoutMs + 1000 + 3000 + summary.maxLoopDelayMs;
      expect(summary.longestTimedOutMs).toBeLessThan(headersDeadlineMs);
      expect(summary.oldestOpenAtEndMs).toBeLessThan(headersDeadlineMs);
      // Bounded by the caps, not by the attack: the attacker's share is at most the per-address cap.
      expect(peaks.peakFds).toBeLessThanOrEqual(baseline.fds + CACHE_SERVER_LIMITS.maxConnectionsPerAddress + 64);
      // Memory: the held connections cost little (1,000 of them ~10 MiB); what grows is the heap's garbage of the
      // ~900 connections a second refused at accept, until V8's next full collection (measured +45 to +86 MiB on
      // a loaded 2-core machine). A leak of 2.5 KiB per connection (60,000 in this attack) would exceed the bound.
      expect(peaks.peakRssBytes - baseline.rssBytes).toBeLessThan(150 * MiB);
    } finally {
      agent.destroy();
      mountClient.close();
    }
  });
});
