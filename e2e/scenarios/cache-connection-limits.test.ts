// Attack: what anyone who reaches a cache server's port can do without the token, against a real
// `granary cache serve` process over real sockets: oversized headers, headers that never end, more
// connections than one address may hold, a body announced to a request that has no token; and that a
// mount's keep-alive connections live through the server's idle timeout.
import * as net from 'node:net';
import { PeerClient } from '../../src/cache/peer-client';
import { authorization, PATHS } from '../../src/cache/protocol';
import { startCacheFixture, type CacheFixture } from './cache-fixture';

jest.setTimeout(120_000);

const HEADERS_TIMEOUT_MS = 2000;
const IDLE_TIMEOUT_MS = 2000;
// Room for what 127.0.0.1 holds besides the tests: the fixture's keep-alive fetches and the server's probes of itself.
const PER_ADDRESS = 8;

/** What one raw connection saw: the bytes the server sent and when the server closed it. */
interface Exchange {
  socket: net.Socket;
  received(): string;
  /** Resolves with the time from connect to close (ms), once the server closes. */
  closed: Promise<number>;
  /** Resolves once the server has sent a whole answer (through the end of its headers and `minBody` bytes more). */
  answered(minBody?: number): Promise<string>;
}

/** Opens a connection from `from` and writes `data` (if any) once connected. */
function connect(fixture: CacheFixture, from: string, data?: string): Exchange {
  const socket = net.connect({ host: fixture.host, port: fixture.port, localAddress: from });
  let received = '';
  const started = Date.now();
  const listeners = new Set<() => void>();
  socket.on('connect', () => data !== undefined && socket.write(data));
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
    for (const listener of listeners) listener();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
  return {
    socket,
    received: () => received,
    closed,
    answered: (minBody = 1) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const end = received.indexOf('\r\n\r\n');
          if (end >= 0 && received.length >= end + 4 + minBody) {
            listeners.delete(check);
            resolve(received);
          }
        };
        listeners.add(check);
        check();
        void closed.then(() => {
          listeners.delete(check);
          reject(new Error(`the server closed the connection before answering; it sent ${JSON.stringify(received.slice(0, 200))}`));
        });
      }),
  };
}

/** Dials from `from` until a GET /healthz is answered (the server may take a moment to see a closed connection go), within 10 s. */
async function untilServed(fixture: CacheFixture, from: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const exchange = connect(fixture, from, `GET ${PATHS.healthz} HTTP/1.1\r\nHost: cache\r\n\r\n`);
    const answer = await exchange.answered().catch(() => '');
    exchange.socket.destroy();
    if (answer !== '' || Date.now() > deadline) return answer;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The JSON error body of a raw answer. */
function errorBody(answer: string): { error: { code: string; message: string } } {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
}

describe('a cache server facing clients without the token', () => {
  let fixture: CacheFixture;

  beforeAll(async () => {
    fixture = await startCacheFixture('cache-limits', {
      args: ['--headers-timeout', String(HEADERS_TIMEOUT_MS), '--idle-timeout', String(IDLE_TIMEOUT_MS), '--max-connections-per-address', String(PER_ADDRESS)],
    });
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it('answers headers larger than its cap with 431 and a JSON body saying so, then closes', async () => {
    const exchange = connect(fixture, '127.0.0.31', `GET ${PATHS.healthz} HTTP/1.1\r\nHost: cache\r\nX-Padding: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    await exchange.closed;
    const answer = exchange.received();
    expect(answer).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(answer).toMatch(/\r\ncontent-type: application\/json\r\n/);
    expect(errorBody(answer).error).toEqual({ code: 'HeadersTooLarge', message: 'the request line and headers are larger than 16384 bytes' });
  });

  it('closes a connection that never finishes its headers once the header timeout has passed, with 408', async () => {
    const dribbling = connect(fixture, '127.0.0.32', `GET ${PATHS.info} HTTP/1.1\r\nHost: cache\r\n`);
    const silent = connect(fixture, '127.0.0.32');
    let line = 0;
    const dribble = setInterval(() => dribbling.socket.writable && dribbling.socket.write(`X-Slow-${line++}: 1\r\n`), 200);
    try {
      const [dribblingMs, silentMs] = await Promise.all([dribbling.closed, silent.closed]);
      console.log(`header timeout ${HEADERS_TIMEOUT_MS} ms: a dribbling connection was closed after ${dribblingMs} ms, a silent one after ${silentMs} ms`);
      for (const [exchange, ms] of [[dribbling, dribblingMs], [silent, silentMs]] as const) {
        expect(ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100);
        // Node checks the timeout on an interval of at most a second; the rest is slack for a busy machine.
        expect(ms).toBeLessThan(HEADERS_TIMEOUT_MS + 1000 + 3000);
        expect(exchange.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
        expect(errorBody(exchange.received()).error.code).toBe('RequestTimeout');
      }
      expect(line).toBeGreaterThan(5);
    } finally {
      clearInterval(dribble);
    }
  });

  it('refuses a connection over the per-address cap at accept, while another address is served', async () => {
    const from = '127.0.0.33';
    // The cap's worth of keep-alive connections, each idle after one answer.
    const held = Array.from({ length: PER_ADDRESS }, () => connect(fixture, from, `GET ${PATHS.healthz} HTTP/1.1\r\nHost: cache\r\n\r\n`));
    for (const exchange of held) expect(await exchange.answered()).toMatch(/^HTTP\/1\.1 200 /);
    const refusedBefore = await fixture.cache.metric('granary_cache_refused_connections_total', 'cap="address"');

    const excess = connect(fixture, from, `GET ${PATHS.healthz} HTTP/1.1\r\nHost: cache\r\n\r\n`);
    await excess.closed;
    expect(excess.received()).toBe('');
    expect(await fixture.cache.metric('granary_cache_refused_connections_total', 'cap="address"')).toBe(refusedBefore + 1);

    // Another address, meanwhile, reads a block with the token.
    const ref = fixture.ref(1);
    const range = fixture.rangeOf(ref);
    const other = connect(fixture, '127.0.0.34', `GET ${fixture.blockPath(ref)} HTTP/1.1\r\nHost: cache\r\nAuthorization: ${authorization(fixture.token)}\r\n\r\n`);
    const answer = await other.answered(range.end - range.start);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(Buffer.from(answer.slice(answer.indexOf('\r\n\r\n') + 4), 'latin1').equals(fixture.content.subarray(range.start, range.end))).toBe(true);
    other.socket.destroy();

    // A connection of the first address ends: the next one from there is taken again.
    held[0]?.socket.destroy();
    expect(await untilServed(fixture, from)).toMatch(/^HTTP\/1\.1 200 /);
    for (const exchange of held) exchange.socket.destroy();
  });

  it('answers a request without the token 401 and closes the connection without reading the body it announced', async () => {
    const exchange = connect(fixture, '127.0.0.35', `POST ${PATHS.warmup} HTTP/1.1\r\nHost: cache\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n{"source":`);
    const answer = await exchange.answered();
    expect(answer).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    expect(answer.toLowerCase()).toContain('\r\nconnection: close\r\n');
    // Closed at once, although 100 MiB of body were announced and none sent: the server did not wait to read them.
    const closedAfterMs = await Promise.race([exchange.closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 5000))]);
    expect(closedAfterMs).toBeGreaterThanOrEqual(0);
    exchange.socket.destroy();
  });

  it("keeps a mount's keep-alive reads working across the server's idle timeout", async () => {
    const client = new PeerClient({ token: fixture.token });
    const url = `http://${fixture.host}:${fixture.port}`;
    try {
      const ref = fixture.ref(0);
      const range = fixture.rangeOf(ref);
      const expected = fixture.content.subarray(range.start, range.end);
      // Pauses on both sides of the moment the client stops reusing (a second before the announced 2 s) and
      // past the moment the server closes (2 s + Node's 1 s): every read must succeed, none may fail as stale.
      for (const pauseMs of [0, 500, 900, 1100, 1500, 2500, 3200, 100, 3100]) {
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        const read = await client.fetchBlock(url, ref, range);
        expect(read.data.equals(expected)).toBe(true);
        await expect(client.info(url)).resolves.toMatchObject({ ramBytes: 256 * 1024 * 1024 });
      }
    } finally {
      client.close();
    }
  });
});

describe('a cache server at its total connection cap', () => {
  const TOTAL = 8;
  let fixture: CacheFixture;

  beforeAll(async () => {
    fixture = await startCacheFixture('cache-total', { blocks: 1, args: ['--max-connections', String(TOTAL)] });
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it('closes connections over the total at accept, whatever their address, and takes new ones once some end', async () => {
    const before = await fixture.cache.metric('granary_cache_refused_connections_total', 'cap="total"');
    // More connections than the cap, each from its own address (no per-address cap is near).
    const exchanges: Exchange[] = [];
    for (let index = 0; index < TOTAL + 4; index++) {
      const exchange = connect(fixture, `127.0.1.${index + 1}`, `GET ${PATHS.healthz} HTTP/1.1\r\nHost: cache\r\n\r\n`);
      await Promise.race([exchange.answered(), exchange.closed]).catch(() => undefined);
      exchanges.push(exchange);
    }
    const served = exchanges.filter((exchange) => exchange.received().startsWith('HTTP/1.1 200 '));
    const refused = exchanges.filter((exchange) => exchange.received() === '');
    // Some of the cap is held already: the test's keep-alive fetches (readiness, metrics) and the server's probes of itself.
    expect(served.length).toBeLessThanOrEqual(TOTAL);
    expect(served.length).toBeGreaterThanOrEqual(TOTAL - 4);
    expect(refused.length).toBeGreaterThanOrEqual(4);
    expect(served.length + refused.length).toBe(TOTAL + 4);
    for (const exchange of served) exchange.socket.destroy();
    expect(await untilServed(fixture, '127.0.1.200')).toMatch(/^HTTP\/1\.1 200 /);
    expect(await fixture.cache.metric('granary_cache_refused_connections_total', 'cap="total"')).toBeGreaterThanOrEqual(before + refused.length);
  });
});
