// One `granary cache serve` process in front of the real S3 server with one object in a fresh bucket, for the
// scenarios that attack a cache server: the block references of that object, and plain HTTP to the server.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { ByteRange } from '../../src/blocks/block-math';
import { blockRange, type BlockRef } from '../../src/cache/block';
import { authorization, blockQuery, endpointIdentity, PATHS } from '../../src/cache/protocol';
import { startCacheServer, type CacheServerProcess } from '../support/cache-server';
import { s3MountEnv } from '../support/mount';
import { createBucket, freePort, s3Client, testS3 } from '../support/s3-server';
import { deleteBucket, makeTemp, MiB, removeTemp } from './helpers';

/** The block size the fixture's server runs with (the default). */
export const BLOCK = 4 * MiB;

/** A cache server process, the object it serves, and the means to ask for its blocks. */
export interface CacheFixture {
  readonly cache: CacheServerProcess;
  /** The server's process id (for /proc/PID). */
  readonly pid: number;
  readonly host: string;
  readonly port: number;
  readonly bucket: string;
  readonly key: string;
  readonly content: Buffer;
  readonly token: string;
  /** The block `index` of the object, with `overrides`. */
  ref(index: number, overrides?: Partial<BlockRef>): BlockRef;
  /** The whole byte range of a block. */
  rangeOf(ref: BlockRef): ByteRange;
  /** The path and query of GET BLOCK for `ref` (its whole range unless given). */
  blockPath(ref: BlockRef, range?: ByteRange): string;
  /** Sends one request with the token and resolves with its status and body (on `agent`; default a fresh connection). */
  request(pathAndQuery: string, options?: { method?: string; body?: string; agent?: http.Agent }): Promise<{ status: number; body: string; bytes: Buffer }>;
  close(): Promise<void>;
}

/** Starts a cache server (defaults plus `args`, which may name the fresh bucket) on `host` over a fresh bucket holding `blocks` blocks and a bit. */
export async function startCacheFixture(stem: string, options: { args?: string[] | ((bucket: string) => string[]); host?: string; blocks?: number } = {}): Promise<CacheFixture> {
  const server = testS3();
  const client = s3Client(server);
  const bucket = await createBucket(server, stem);
  const key = 'models/weights.bin';
  const content = randomBytes((options.blocks ?? 3) * BLOCK + 12345);
  const etag = ((await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: content }))).ETag ?? '').replace(/"/g, '');
  const base = makeTemp(stem);
  const token = `fixture-token-${randomBytes(12).toString('hex')}`;
  const tokenFile = path.join(base, 'token');
  fs.writeFileSync(tokenFile, token, { mode: 0o600 });
  const host = options.host ?? '127.0.0.1';
  const port = await freePort();
  const cache = await startCacheServer({
    host,
    port,
    ramBytes: '256MiB',
    diskDir: path.join(base, 'disk'),
    diskBytes: '256MiB',
    peers: [`http://${host}:${port}`],
    tokenFile,
    env: s3MountEnv(server),
    args: typeof options.args === 'function' ? options.args(bucket) : (options.args ?? []),
  });
  const endpoint = endpointIdentity(server.endpoint);
  const ref = (index: number, overrides: Partial<BlockRef> = {}): BlockRef => ({ endpoint, bucket, key, etag, objectSize: content.length, index, blockSize: BLOCK, ...overrides });
  const rangeOf = (block: BlockRef): ByteRange => blockRange(block);
  return {
    cache,
    pid: cache.child.pid ?? -1,
    host,
    port,
    bucket,
    key,
    content,
    token,
    ref,
    rangeOf,
    blockPath: (block, range) => `${PATHS.block}?${blockQuery(block, range ?? rangeOf(block))}`,
    request: (pathAndQuery, { method = 'GET', body, agent } = {}) =>
      new Promise((resolve, reject) => {
        const headers = { authorization: authorization(token), ...(body !== undefined && { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }) };
        const request = http.request({ host, port, path: pathAndQuery, method, agent: agent ?? false, headers }, (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const bytes = Buffer.concat(chunks);
            resolve({ status: response.statusCode ?? 0, body: bytes.toString('utf8'), bytes });
          });
          response.on('error', reject);
        });
        request.on('error', reject);
        request.end(body);
      }),
    async close() {
      await cache.stop();
      await deleteBucket(client, bucket);
      client.destroy();
      removeTemp(base);
    },
  };
}
