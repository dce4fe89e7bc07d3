// CPU per S3Store.get(): the SDK's GetObject against the lean SigV4 path, on the real S3-compatible test server.
// Run: npx tsc && node dist/bench/store-get.js

import { createBucket, startS3Server, type S3Server } from '../e2e/support/s3-server';
import { S3Store } from '../src/objectstore/s3';
import { median } from './table';

/** Objects read per run. */
const OBJECT_COUNT = 2000;

/** Size of each object: a small file. */
const OBJECT_BYTES = 64 * 1024;

/** GETs in flight at once, as the filesystem's small-file reads have. */
const CONCURRENCY = 16;

/** Measured runs per side (the table shows their median), after one unmeasured warm-up run. */
const RUNS = 3;

/** One measured run: throughput and the CPU this process spent per GET. */
interface RunResult {
  getsPerSecond: number;
  cpuMsPerGet: number;
}

/** Reads every key once with CONCURRENCY workers, draining each body, and measures wall time and CPU. */
async function readAll(store: S3Store, keys: string[]): Promise<RunResult> {
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      const { body } = await store.get(key, { range: { start: 0, end: OBJECT_BYTES } });
      let bytes = 0;
      for await (const chunk of body) bytes += (chunk as Buffer).length;
      if (bytes !== OBJECT_BYTES) throw new Error(`read ${bytes} bytes of ${key}, expected ${OBJECT_BYTES}`);
    }
  };
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  return { getsPerSecond: keys.length / seconds, cpuMsPerGet: (used.user + used.system) / 1000 / keys.length };
}

async function main(): Promise<void> {
  let server: S3Server | undefined;
  const stop = () => { void server?.stop().finally(() => process.exit(130)); };
  process.once('SIGINT', stop);
  const stores: S3Store[] = [];
  try {
    server = await startS3Server();
    const bucket = await createBucket(server, 'bench-get');
    const open = (fastGet: boolean) => {
      const store = new S3Store({ bucket, endpoint: server!.endpoint, region: server!.region, credentials: { accessKeyId: server!.accessKeyId, secretAccessKey: server!.secretAccessKey }, fastGet }, {});
      stores.push(store);
      return store;
    };
    const sides = [{ name: 'SDK GetObject', store: open(false) }, { name: 'lean GET', store: open(true) }];
    const keys = Array.from({ length: OBJECT_COUNT }, (_, i) => `small/${String(i).padStart(5, '0')}.bin`);
    const data = Buffer.alloc(OBJECT_BYTES, 7);
    let put = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (put < keys.length) await sides[0]!.store.put(keys[put++]!, data);
    }));
    const results = new Map<string, RunResult[]>(sides.map((side) => [side.name, []]));
    for (const side of sides) await readAll(side.store, keys);
    // Sides alternate run by run, so drift of the machine touches both alike.
    for (let run = 0; run < RUNS; run++) {
      for (const side of sides) results.get(side.name)!.push(await readAll(side.store, keys));
    }
    console.log(`${OBJECT_COUNT} x ${OBJECT_BYTES / 1024} KiB objects, ${CONCURRENCY} GETs in flight, median of ${RUNS} runs (CPU of this process only)\n`);
    console.log('| path          |  GETs/s | CPU ms per GET |');
    console.log('|---------------|--------:|---------------:|');
    for (const side of sides) {
      const runs = results.get(side.name)!;
      const rate = median(runs.map((r) => r.getsPerSecond));
      const cpu = median(runs.map((r) => r.cpuMsPerGet));
      console.log(`| ${side.name.padEnd(13)} | ${rate.toFixed(0).padStart(7)} | ${cpu.toFixed(3).padStart(14)} |`);
    }
  } finally {
    for (const store of stores) store.close();
    await server?.stop();
    process.removeListener('SIGINT', stop);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
