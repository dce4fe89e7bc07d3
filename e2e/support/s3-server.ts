import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { stopProcess } from './process';
import type { SelfSignedCertificate } from './self-signed';
import { toolPath } from './tools';

/** A running real S3-compatible server (versitygw over a temporary directory) for tests. */
export interface S3Server {
  /** http://127.0.0.1:PORT, or https:// when started with a certificate. */
  readonly endpoint: string;
  /** The certificate and key an https server presents (its clients trust `tls.cert`); undefined for http. */
  readonly tls: SelfSignedCertificate | undefined;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The directory that holds the buckets: one subfolder per bucket, one file per object. */
  readonly dataDir: string;
  readonly pid: number;
  /** The server's own output (stdout and stderr), kept in a file for the whole run: see startS3Server for why. */
  readonly logPath: string;
  /** SIGTERM (then SIGKILL), and removes the data directory unless it was given in S3ServerOptions.dataDir. */
  stop(): Promise<void>;
  /** SIGKILLs the server (its own PID only) and resolves once it has exited; the data directory stays, the log goes. */
  kill(): Promise<void>;
}

/** Options for startS3Server. */
export interface S3ServerOptions {
  /** Listen port; 0 picks a free one. */
  port?: number;
  /** Extra environment for the server process. */
  env?: NodeJS.ProcessEnv;
  /**
   * Serve this existing directory, and leave it in place at stop(): a server started again with the same
   * dataDir, port and secretAccessKey is the same store after a crash. Default: a fresh temporary directory, removed at stop().
   */
  dataDir?: string;
  /** The root secret key (the access key id is fixed); default a fresh one. */
  secretAccessKey?: string;
  /** Serve https with this certificate and key (versitygw's --cert and --key); default plain http. */
  tls?: SelfSignedCertificate;
}

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`S3 test server exited with ${child.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`S3 test server did not listen on ${port} within ${timeoutMs} ms: ${log()}`);
}

/** Starts versitygw (pinned, installed by e2e/tools/install.sh) on 127.0.0.1 with fresh credentials. */
export async function startS3Server(options: S3ServerOptions = {}): Promise<S3Server> {
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'granary-s3-'));
  const port = options.port || (await freePort());
  const accessKeyId = 'granarytest';
  const secretAccessKey = options.secretAccessKey ?? `secret-${process.pid}-${Date.now()}`;
  const region = 'us-east-1';
  // Output goes to a file, never a pipe: a pipe closed once the server listens would kill it with SIGPIPE at its
  // next line of output (a Go program dies on EPIPE at stdout or stderr), taking every later test down with it.
  const logPath = path.join(os.tmpdir(), `granary-s3-${port}-${process.pid}-${Date.now().toString(36)}.log`);
  const logFd = fs.openSync(logPath, 'a');
  // Credentials go through the environment, never argv.
  let child: ChildProcess;
  try {
    const tls = options.tls ? ['--cert', options.tls.certFile, '--key', options.tls.keyFile] : [];
    child = spawn(toolPath('versitygw'), ['--port', `127.0.0.1:${port}`, ...tls, '--quiet', '--keep-alive', 'posix', dataDir], {
      env: { ...process.env, ...options.env, ROOT_ACCESS_KEY_ID: accessKeyId, ROOT_SECRET_ACCESS_KEY: secretAccessKey, VGW_REGION: region },
      stdio: ['ignore', logFd, logFd],
    });
  } finally {
    fs.closeSync(logFd);
  }
  const output = () => {
    try {
      return fs.readFileSync(logPath, 'utf8').slice(-4000);
    } catch {
      return '';
    }
  };
  await waitForPort(port, child, output, 20_000);
  // Once it listens, the server must not keep the test runner alive.
  child.unref();
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const stop = async () => {
    await stopProcess(child);
    if (options.dataDir === undefined) fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(logPath, { force: true });
  };
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    fs.rmSync(logPath, { force: true });
  };
  const endpoint = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  return { endpoint, tls: options.tls, region, accessKeyId, secretAccessKey, dataDir, pid: child.pid ?? -1, logPath, stop, kill };
}

/**
 * Starts the store `previous` was, again: same data directory, port and credentials (the process is new).
 * `previous` must have been started with S3ServerOptions.dataDir (else its data went with it) and be stopped or killed.
 */
export async function restartS3Server(previous: S3Server, options: Pick<S3ServerOptions, 'env'> = {}): Promise<S3Server> {
  const port = Number(new URL(previous.endpoint).port);
  return startS3Server({ ...options, dataDir: previous.dataDir, port, secretAccessKey: previous.secretAccessKey, ...(previous.tls && { tls: previous.tls }) });
}

/** A plain SDK client for a test server, to set up and inspect buckets outside granary; it trusts the server's certificate, if any. */
export function s3Client(server: Pick<S3Server, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'> & { tls?: Pick<SelfSignedCertificate, 'cert'> }): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    ...(server.tls && { requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: server.tls.cert }) }) }),
  });
}

/** Creates a bucket with a unique name that starts with `stem`. */
export async function createBucket(server: S3Server | TestS3, stem = 'test'): Promise<string> {
  const name = `${stem}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`.toLowerCase().slice(0, 63);
  const client = s3Client(server);
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
  return name;
}

/** The shared test server started by the integration project's global setup. */
export interface TestS3 {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  dataDir: string;
}

/** Reads the shared test server from the environment that global setup exported. */
export function testS3(): TestS3 {
  const endpoint = process.env.GRANARY_TEST_S3_ENDPOINT;
  if (!endpoint) throw new Error('GRANARY_TEST_S3_ENDPOINT is not set: run integration tests through jest (npm test), whose global setup starts the S3 server');
  return {
    endpoint,
    region: process.env.GRANARY_TEST_S3_REGION ?? 'us-east-1',
    accessKeyId: process.env.GRANARY_TEST_S3_ACCESS_KEY_ID ?? '',
    secretAccessKey: process.env.GRANARY_TEST_S3_SECRET_ACCESS_KEY ?? '',
    dataDir: process.env.GRANARY_TEST_S3_DATA_DIR ?? '',
  };
}
