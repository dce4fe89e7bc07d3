import * as fs from 'node:fs';

/** Stops the shared S3 server started by global setup (found through the environment it exported). */
export default async function globalTeardown(): Promise<void> {
  const pid = Number(process.env.GRANARY_TEST_S3_PID);
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  }
  const dataDir = process.env.GRANARY_TEST_S3_DATA_DIR;
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}
