// The measurements behind the read path's defaults (random-read unit, readahead window), run on the
// read path alone (no FUSE) against a real S3-compatible server started here. One command:
//   npx tsc && node dist/bench/read-path.js [--units 4194304,1048576,262144,65536]
// It prints one table; its numbers are what src/config/read-path.ts cites.
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../src/log/logger';
import { S3Store } from '../src/objectstore/s3';
import { readPathSchema } from '../src/config/read-path';
import { ReadPath } from '../src/fs/read/read-path';
import { createBucket, startS3Server } from '../e2e/support/s3-server';
import { countingGets } from '../e2e/support/counting-store';

const MiB = 1024 * 1024;
const OBJECT_SIZE = 1024 * MiB;
const RANDOM_READS = 400;


/** Deterministic offsets in [0, limit), so every variant reads the same places. */
function offsets(count: number, limit: number, seed: number): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return Math.floor((state / 2 ** 31) * limit);
  });
}

async function main(): Promise<void> {
  const unitsFlag = process.argv.indexOf('--units');
  const units = unitsFlag > 0 ? (process.argv[unitsFlag + 1] ?? '').split(',').map(Number) : [4 * MiB, MiB, 256 * 1024, 64 * 1024];
  const server = await startS3Server();
  const bucket = await createBucket(server, 'readbench');
  const s3 = new S3Store({ bucket, endpoint: server.endpoint, region: server.region, credentials: server });
  const rows: string[] = ['| variant | rate | GETs | MiB fetched |', '|---|---|---|---|'];
  try {
    process.stderr.write(`uploading a ${OBJECT_SIZE / MiB} MiB object...\n`);
    const chunk = randomBytes(256 * MiB);
    const etag = (await s3.put('big.bin', Buffer.concat([chunk, chunk, chunk, chunk]))).etag;
    const run = async (config: object, work: (path: ReadPath) => Promise<number>) => {
      const counted = countingGets(s3);
      const path = new ReadPath({ store: counted.store, config: readPathSchema.parse(config), logger: silentLogger() });
      try {
        const rate = await work(path);
        const fetched = counted.gets.reduce((total, range) => total + range.end - range.start, 0);
        return { rate, gets: counted.gets.length, fetchedMiB: fetched / MiB };
      } finally {
        path.close();
      }
    };
    for (const concurrency of [1, 8]) {
      for (const unit of units) {
        process.stderr.write(`random 1 MiB reads, unit ${unit / 1024} KiB, ${concurrency} at once...\n`);
        const starts = offsets(RANDOM_READS, OBJECT_SIZE - MiB, 11 + concurrency);
        const result = await run({ randomReadUnitBytes: unit }, async (path) => {
          const started = process.hrtime.bigint();
          await Promise.all(
            Array.from({ length: concurrency }, async (_, worker) => {
              const handle = path.open({ key: 'big.bin', etag, size: OBJECT_SIZE });
              for (let i = worker; i < starts.length; i += concurrency) await handle.read(starts[i] as number, MiB);
            }),
          );
          return starts.length / (Number(process.hrtime.bigint() - started) / 1e9);
        });
        rows.push(`| random 1 MiB, unit ${unit / 1024} KiB, ${concurrency} readers | ${result.rate.toFixed(0)} reads/s | ${result.gets} | ${result.fetchedMiB.toFixed(0)} |`);
      }
    }
    for (const maxBlocks of [0, 2, 8, 16, 32]) {
      process.stderr.write(`sequential read, readahead up to ${maxBlocks} blocks...\n`);
      const result = await run({ readaheadMaxBlocks: maxBlocks }, async (path) => {
        const handle = path.open({ key: 'big.bin', etag, size: OBJECT_SIZE });
        const started = process.hrtime.bigint();
        for (let offset = 0; offset < OBJECT_SIZE; offset += MiB) await handle.read(offset, MiB);
        return OBJECT_SIZE / MiB / (Number(process.hrtime.bigint() - started) / 1e9);
      });
      rows.push(`| sequential, readaheadMaxBlocks ${maxBlocks} | ${result.rate.toFixed(0)} MiB/s | ${result.gets} | ${result.fetchedMiB.toFixed(0)} |`);
    }
  } finally {
    s3.close();
    await server.stop();
  }
  process.stdout.write(`${rows.join('\n')}\n\ncommand: node dist/bench/read-path.js${unitsFlag > 0 ? ` --units ${units.join(',')}` : ''}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`read-path bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
