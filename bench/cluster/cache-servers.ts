// The simulated nodes' cache servers: `granary cache serve` on 127.0.0.11, .12, ..., one ring, one token,
// each with its own disk dir, and on demand each with its S3 gateway. Started, probed until ready, restarted
// from their disks, stopped.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort } from '../../e2e/support/s3-server';
import { stopProcess } from '../../e2e/support/process';
import { messageOf } from '../exec';
import { addCounters, countersOf, NO_COUNTERS, sumSamples, type CacheCounters } from './metrics';

/** Longest a cache server may take to answer /readyz 200. */
export const READY_TIMEOUT_MS = 30_000;

/** Longest a cache server may take to exit after SIGTERM (it finishes its disk writes first) before SIGKILL. */
export const STOP_GRACE_MS = 30_000;

/** Interval between two /readyz probes. */
export const READY_POLL_MS = 100;

/** The gauge of the ring members a server sees. */
export const RING_MEMBERS_METRIC = 'granary_cache_ring_members';

/** Characters of a server's log quoted in an error. */
export const LOG_TAIL_CHARS = 600;

/** How to run the cache servers of the simulated nodes. */
export interface CacheClusterSpec {
  /** The granary CLI (dist/src/cli/index.js). */
  cli: string;
  /** One listen address per node (127.0.0.11, ...). */
  hosts: readonly string[];
  /** Each server's disk tier goes in `dir`/cache-N, its log in `dir`/cache-N.log. */
  dir: string;
  ramBytes: number;
  diskBytes: number;
  tokenFile: string;
  /** Endpoint and credentials of the object store (AWS_*). */
  env: NodeJS.ProcessEnv;
  /** Serve the S3 gateway too (--s3-listen on a free port of each node's address), with these access keys. */
  s3?: { keysFile: string };
}

/** The running cache servers of all nodes. */
export interface CacheCluster {
  /** Their base URLs, in node order: `--peers` and `--cache-peers`. */
  readonly peers: readonly string[];
  /** The S3 gateways' endpoints (http://HOST:PORT), in node order; empty without `s3` in the spec. */
  readonly s3Endpoints: readonly string[];
  /** Their counters, summed over the servers (counters restart at 0 with a restart). */
  counters(): Promise<CacheCounters>;
  /** The sum over the servers of a metric's samples (see sumSamples). */
  metricSum(name: string, labels?: string): Promise<number>;
  /** Stops every server (SIGTERM: disk writes finish) and starts it again on the same disk dir: RAM empty, disk full. */
  restart(): Promise<void>;
  /** Stops every server. */
  stop(): Promise<void>;
}

function logTail(file: string): string {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch {
    // no log yet
  }
  return `${text.slice(-LOG_TAIL_CHARS) || '(empty log)'} (log: ${file})`;
}

/**
 * Starts one server and resolves once /readyz answers 200 and, with a gateway, once the gateway answers and the
 * server's ring holds every node (the gateway reads a ring it does not see whole from its own store); on failure
 * the process is gone.
 */
async function startServer(spec: CacheClusterSpec, peers: readonly string[], s3Endpoints: readonly string[], index: number): Promise<ChildProcess> {
  const url = new URL(peers[index]!);
  const s3 = s3Endpoints[index];
  const diskDir = path.join(spec.dir, `cache-${index}`);
  const logFile = path.join(spec.dir, `cache-${index}.log`);
  fs.mkdirSync(diskDir, { recursive: true });
  const log = fs.openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [
      spec.cli, 'cache', 'serve',
      '--listen', url.host,
      '--ram-bytes', String(spec.ramBytes),
      '--disk-dir', diskDir,
      '--disk-bytes', String(spec.diskBytes),
      // The bench's disk is shared with the origin and the scratch files; its caps are the only bound wanted here.
      '--disk-free-floor', '0',
      '--peers', peers.join(','),
      '--token-file', spec.tokenFile,
      '--log-level', 'warn',
      ...(s3 && spec.s3 ? ['--s3-listen', new URL(s3).host, '--s3-keys-file', spec.s3.keysFile] : []),
    ], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...spec.env }, stdio: ['ignore', log, log] });
  } finally {
    fs.closeSync(log);
  }
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`cache server ${url.host} exited (${child.exitCode ?? child.signalCode}) before it was ready: ${logTail(logFile)}`);
    const ready = await fetch(`${url.origin}/readyz`).then((response) => response.ok, () => false);
    // Any answer of the gateway (an unsigned request gets 403) says it listens.
    if (ready && (!s3 || (await gatewayReady(url.origin, s3, peers.length)))) return child;
    if (Date.now() > deadline) {
      await stopProcess(child, 0);
      throw new Error(`cache server ${url.host} was not ready within ${READY_TIMEOUT_MS / 1000} s${s3 ? ` (with its S3 gateway on ${s3} and a ring of ${peers.length})` : ''}: ${logTail(logFile)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
}

/** Whether the server at `origin` sees a ring of `members` and its S3 gateway at `s3` answers. */
async function gatewayReady(origin: string, s3: string, members: number): Promise<boolean> {
  const answers = await fetch(s3).then(async (response) => {
    await response.body?.cancel();
    return true;
  }, () => false);
  if (!answers) return false;
  const metrics = await fetch(`${origin}/metrics`).then((response) => (response.ok ? response.text() : ''), () => '');
  return sumSamples(metrics, RING_MEMBERS_METRIC) === members;
}

/** Starts one cache server per host, all in one ring; on failure the ones already started are stopped. */
export async function startCacheCluster(spec: CacheClusterSpec): Promise<CacheCluster> {
  const peers = await Promise.all(spec.hosts.map(async (host) => `http://${host}:${await freePort()}`));
  const s3Endpoints = spec.s3 ? await Promise.all(spec.hosts.map(async (host) => `http://${host}:${await freePort()}`)) : [];
  let servers: ChildProcess[] = [];
  const stopAll = async () => {
    const stopping = servers;
    servers = [];
    await Promise.all(stopping.map((server) => stopProcess(server, STOP_GRACE_MS)));
  };
  const startAll = async () => {
    const started = await Promise.allSettled(spec.hosts.map((_, index) => startServer(spec, peers, s3Endpoints, index)));
    servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) {
      await stopAll();
      throw new Error(messageOf(failed.reason));
    }
  };
  await startAll();
  const metricTexts = () => Promise.all(peers.map(async (peer) => {
    const response = await fetch(`${peer}/metrics`);
    if (!response.ok) throw new Error(`${peer}/metrics answered ${response.status}`);
    return response.text();
  }));
  return {
    peers,
    s3Endpoints,
    async counters() {
      return (await metricTexts()).map(countersOf).reduce(addCounters, NO_COUNTERS);
    },
    async metricSum(name, labels) {
      return (await metricTexts()).reduce((sum, text) => sum + sumSamples(text, name, labels), 0);
    },
    async restart() {
      await stopAll();
      await startAll();
    },
    stop: stopAll,
  };
}
