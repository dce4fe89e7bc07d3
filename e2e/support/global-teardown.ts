import * as fs from 'node:fs';

/**
 * Stops the shared S3 server started by global setup (found through the environment it exported). A server that died
 * during the run is reported with the end of its output: every test after its death failed with ECONNREFUSED.
 */
export default async function globalTeardown(): Promise<void> {
  const pid = Number(process.env.GRANARY_TEST_S3_PID);
  const logPath = process.env.GRANARY_TEST_S3_LOG;
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      const output = logPath ? fs.readFileSync(logPath, 'utf8').slice(-4000) : '';
      console.error(`the shared S3 test server (pid ${pid}) died during the run; its last output:\n${output || '(none)'}`);
    }
  }
  const dataDir = process.env.GRANARY_TEST_S3_DATA_DIR;
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  if (logPath) fs.rmSync(logPath, { force: true });
}
