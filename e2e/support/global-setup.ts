import { startS3Server } from './s3-server';

/** Starts the one real S3-compatible server the integration tests share and exports where it is. */
export default async function globalSetup(): Promise<void> {
  const server = await startS3Server();
  process.env.GRANARY_TEST_S3_ENDPOINT = server.endpoint;
  process.env.GRANARY_TEST_S3_REGION = server.region;
  process.env.GRANARY_TEST_S3_ACCESS_KEY_ID = server.accessKeyId;
  process.env.GRANARY_TEST_S3_SECRET_ACCESS_KEY = server.secretAccessKey;
  process.env.GRANARY_TEST_S3_DATA_DIR = server.dataDir;
  process.env.GRANARY_TEST_S3_PID = String(server.pid);
  process.env.GRANARY_TEST_S3_LOG = server.logPath;
}
