// The baseline: the SDK straight at the bucket, as fast as this process can drive it.
import * as fs from 'node:fs';
import { volumeStore, type Attachment, type Side, type Volume } from './side';

/** The direct side; `parallel` and `rangeBytes` only describe it (the workloads use them). */
export function directSide(parallel: number, rangeBytes: number): Side {
  const mib = rangeBytes / (1024 * 1024);
  return {
    name: 'direct',
    kind: 'store',
    settings: `@aws-sdk/client-s3 through granary's S3Store in the bench process (keep-alive, 64 sockets): ranged GETs of ${mib} MiB and multipart parts of ${mib} MiB, ${parallel} in flight; small files and random reads ${parallel} GETs in flight; listing = paged ListObjectsV2 of the whole prefix`,
    version: async () => {
      const manifest = require.resolve('@aws-sdk/client-s3/package.json');
      return `@aws-sdk/client-s3 ${(JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version: string }).version}`;
    },
    trust: 'the `ca` option of its S3Store (its https agent and raw connections): NODE_EXTRA_CA_CERTS is read when a process starts, before the bench made the certificate',
    async attach(volume: Volume): Promise<Attachment> {
      const store = volumeStore(volume);
      return { kind: 'store', store, keyPrefix: `${volume.prefix}/`, detach: async () => store.close() };
    },
  };
}
