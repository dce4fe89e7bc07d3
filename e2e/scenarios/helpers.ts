// Shared pieces of the workload scenarios: seeded data that can be recomputed at any offset, SDK
// uploads and inspection, child-process runs, temporary folders and bucket cleanup.
import { execFile, spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { readMountInfo } from '../../src/system/mountinfo';

/** One MiB. */
export const MiB = 1024 * 1024;

/** The result of a finished child process. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command` with `args` (no shell) and resolves with its exit code and output, never rejecting. */
export function run(command: string, args: readonly string[], options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, [...args], { cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * MiB, ...(options.env && { env: options.env }) }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Runs a `sh -c` script and resolves with its result. */
export function sh(script: string, options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run('sh', ['-c', script], options);
}

/** Runs a `sh -c` script and returns its stdout; throws with stderr when it exits non-zero. */
export async function shOk(script: string, options: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const result = await sh(script, options);
  if (result.code !== 0) throw new Error(`'${script}' exited ${result.code}: ${result.stderr.trim()}`);
  return result.stdout;
}

/** Quotes a string for a POSIX shell. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Hex sha256 of a buffer or string. */
export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Hex sha256 of everything a stream yields. */
export async function sha256Stream(stream: AsyncIterable<Buffer | Uint8Array>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest('hex');
}

/**
 * Deterministic pseudo-random bytes [offset, offset + length) of the stream named `seed`: the
 * AES-256-CTR keystream, so any range can be recomputed without generating what comes before it.
 */
export function seededBytes(seed: string, offset: number, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const block = BigInt(Math.floor(offset / 16));
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(block >> 64n, 0);
  iv.writeBigUInt64BE(block & 0xffffffffffffffffn, 8);
  const skip = offset % 16;
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  return cipher.update(Buffer.alloc(skip + length)).subarray(skip);
}

/**
 * Runs `command` with `size` seeded bytes on its stdin (1 MiB at a time, respecting backpressure),
 * so a child can write a large file into a mount without the bytes being a file first.
 */
export function pipeSeeded(command: string, args: readonly string[], seed: string, size: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.on('error', () => undefined); // a child that dies early is reported through its exit code
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    let offset = 0;
    const feed = () => {
      while (offset < size) {
        const chunk = seededBytes(seed, offset, Math.min(MiB, size - offset));
        offset += chunk.length;
        if (!child.stdin.write(chunk)) {
          child.stdin.once('drain', feed);
          return;
        }
      }
      child.stdin.end();
    };
    feed();
  });
}

/** Hex sha256 of the first `size` bytes of the seeded stream, computed in chunks. */
export function seededSha256(seed: string, size: number, chunk = 16 * MiB): string {
  const hash = createHash('sha256');
  for (let offset = 0; offset < size; offset += chunk) hash.update(seededBytes(seed, offset, Math.min(chunk, size - offset)));
  return hash.digest('hex');
}

/**
 * Uploads `size` seeded bytes as `key` with a multipart upload, generating each part just before it
 * is sent (never the whole object in memory) and hashing in order; returns the sha256.
 */
export async function uploadSeeded(client: S3Client, bucket: string, key: string, seed: string, size: number, partSize = 16 * MiB, concurrency = 4): Promise<string> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  const parts: Array<{ PartNumber: number; ETag: string | undefined }> = [];
  let next = 0;
  try {
    const worker = async () => {
      while (next * partSize < size) {
        const index = next++;
        const offset = index * partSize;
        const body = seededBytes(seed, offset, Math.min(partSize, size - offset));
        // Parts are generated in index order by whichever worker takes them; hash them in that order.
        hash.update(body);
        const { ETag } = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: index + 1, Body: body }));
        parts[index] = { PartNumber: index + 1, ETag };
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (error) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => undefined);
    throw error;
  }
  return hash.digest('hex');
}

/** Puts many small objects with `concurrency` requests in flight. */
export async function putObjects(client: S3Client, bucket: string, objects: ReadonlyArray<readonly [string, Buffer | string]>, concurrency = 16): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < objects.length) {
        const [key, body] = objects[next++] as readonly [string, Buffer | string];
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      }
    }),
  );
}

/** The whole object as a buffer (small objects only). */
export async function getObject(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const { Body } = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await (Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

/** Hex sha256 and size of an object, streamed (for large objects). */
export async function objectSha256(client: S3Client, bucket: string, key: string): Promise<{ sha256: string; size: number }> {
  const { Body, ContentLength } = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { sha256: await sha256Stream(Body as Readable), size: ContentLength ?? -1 };
}

/** Every key under `prefix` (ListObjectsV2, all pages), sorted. */
export async function listKeys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

/** Deletes every object of `bucket` and then the bucket; a missing bucket is not an error. */
export async function deleteBucket(client: S3Client, bucket: string): Promise<void> {
  let keys: string[];
  try {
    keys = await listKeys(client, bucket);
  } catch {
    return;
  }
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000).map((Key) => ({ Key }));
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
}

/** A fresh temporary folder (0755, so other uids could traverse it); remove it with removeTemp. */
export function makeTemp(stem: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `granary-${stem}-`));
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** Removes a temporary folder, unless something is still mounted inside it (that would delete volume data). */
export function removeTemp(dir: string | undefined): void {
  if (!dir || !fs.existsSync(dir)) return;
  const real = fs.realpathSync(dir);
  if (readMountInfo().some((entry) => entry.mountPoint === real || entry.mountPoint.startsWith(`${real}/`))) return;
  fs.rmSync(real, { recursive: true, force: true });
}

/** Parses `sha256sum` output into a map from path to hex digest. */
export function parseSha256sum(output: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of output.split('\n')) {
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (match) sums.set(match[2] as string, match[1] as string);
  }
  return sums;
}

/** A child process driven step by step: it prints a line when it reaches a step and waits for a newline on stdin to go on. */
export interface SteppedChild {
  /** The child's process id (for signals and /proc). */
  readonly pid: number;
  /** Resolves with the next line the child prints; rejects if it exits first. */
  nextLine(): Promise<string>;
  /** Lets the child go on past the step it is waiting at. */
  proceed(): void;
  /** Resolves when the child has exited. */
  finished: Promise<RunResult>;
}

/** Spawns `command` for step-by-step driving (see SteppedChild). */
export function spawnStepped(command: string, args: readonly string[]): SteppedChild {
  const child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let consumed = 0;
  let closed = false;
  let waiter: (() => void) | undefined;
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    waiter?.();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.on('error', () => undefined);
  const finished = new Promise<RunResult>((resolve) => {
    child.once('close', (code, signal) => {
      closed = true;
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
      waiter?.();
    });
  });
  const nextLine = async (): Promise<string> => {
    for (;;) {
      const end = stdout.indexOf('\n', consumed);
      if (end >= 0) {
        const line = stdout.slice(consumed, end);
        consumed = end + 1;
        return line;
      }
      if (closed) throw new Error(`${command} exited (${child.exitCode ?? child.signalCode}) before printing a line: ${stderr.trim()}`);
      await new Promise<void>((resolve) => (waiter = resolve));
      waiter = undefined;
    }
  };
  return { pid: child.pid ?? -1, nextLine, proceed: () => child.stdin.write('\n'), finished };
}
