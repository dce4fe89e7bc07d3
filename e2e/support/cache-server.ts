// `granary cache serve` as a child process, the way a cache pod runs it: started, probed until ready, killed.
import { spawn, type ChildProcess } from 'node:child_process';
import { builtCli } from './built-cli';
import { stopProcess } from './process';

/** Keeps at most this many characters of a server's stderr in memory. */
const MAX_LOG_CHARS = 256 * 1024;

/** How long a cache server may take to answer /readyz. */
const READY_TIMEOUT_MS = 20_000;

/** How to run one cache server. */
export interface CacheServerOptions {
  host: string;
  port: number;
  ramBytes: string;
  diskDir: string;
  diskBytes: string;
  peers: string[];
  tokenFile: string;
  /** Endpoint and credentials of the object store (AWS_*). */
  env: NodeJS.ProcessEnv;
  /** More flags of `granary cache serve` (limits, --buckets, --block-size). */
  args?: string[];
}

/** A running cache server process. */
export interface CacheServerProcess {
  readonly url: string;
  readonly child: ChildProcess;
  log(): string;
  /** The value of a metric (summed over its label sets that match `labels`, a substring such as 'from="disk"'). */
  metric(name: string, labels?: string): Promise<number>;
  /** SIGKILL: no goodbye, no flush (a crashed node). */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
}

/** Starts `granary cache serve` and resolves once /readyz answers 200. */
export async function startCacheServer(options: CacheServerOptions): Promise<CacheServerProcess> {
  const url = `http://${options.host}:${options.port}`;
  const args = [
    builtCli(), 'cache', 'serve',
    '--listen', `${options.host}:${options.port}`,
    '--ram-bytes', options.ramBytes,
    '--disk-dir', options.diskDir,
    '--disk-bytes', options.diskBytes,
    '--disk-free-floor', '0',
    '--peers', options.peers.join(','),
    '--token-file', options.tokenFile,
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-MAX_LOG_CHARS)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const server: CacheServerProcess = {
    url,
    child,
    log: () => log,
    async metric(name, labels = '') {
      const text = await (await fetch(`${url}/metrics`)).text();
      return text
        .split('\n')
        .filter((line) => (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) && line.includes(labels))
        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    stop: () => stopProcess(child, 10_000),
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`cache server ${url} exited (${child.exitCode ?? child.signalCode}):\n${log}`);
    const ready = await fetch(`${url}/readyz`).then((response) => response.ok, () => false);
    if (ready) return server;
    if (Date.now() > deadline) {
      await server.kill();
      throw new Error(`cache server ${url} was not ready within ${READY_TIMEOUT_MS} ms:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
