// Uploading a staging file: one PUT when small, else a multipart upload of parts read from the file in parallel.
import type { promises as fsp } from 'node:fs';
import type { Logger } from '../../log/logger';
import type { ObjectInfo, ObjectStore } from '../../objectstore/store';
import { forEachLimited } from '../../util/for-each-limited';
import { partsOf } from './part-plan';
import type { WritePath } from './write-path';

/** Reads [start, start + length) of a file; bytes past its end (never written) read as zeros. */
export async function readRange(file: fsp.FileHandle, start: number, length: number, into?: Buffer): Promise<Buffer> {
  const buffer = into ?? Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(buffer, done, length - done, start + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  buffer.fill(0, done, length);
  return buffer;
}

/**
 * Uploads the first `size` bytes of `file` as the object `key` and returns it once the store acknowledged it.
 * Part buffers come from the mount's memory budget like a streaming upload's; on any failure the multipart
 * upload is aborted (in the background, retried) after every started part settled, so no part is left behind.
 * `onAcknowledged` is called at each part and at the object the store acknowledges.
 */
export async function uploadFile(
  store: ObjectStore, key: string, file: fsp.FileHandle, size: number, writePath: WritePath, logger: Logger, onAcknowledged?: () => void,
): Promise<ObjectInfo> {
  const { config, budget } = writePath;
  if (size <= config.singlePutMaxBytes) {
    await budget.acquire(size);
    try {
      const info = await store.put(key, await readRange(file, 0, size));
      onAcknowledged?.();
      return info;
    } finally {
      budget.release(size);
    }
  }
  const upload = await writePath.uploads.start(store, key);
  try {
    const tasks = partsOf(size, config).map(({ partNumber, start, end }) => async () => {
      await budget.acquire(end - start);
      try {
        await upload.uploadPart(partNumber, await readRange(file, start, end - start));
        onAcknowledged?.();
      } finally {
        budget.release(end - start);
      }
    });
    await forEachLimited(tasks, config.maxPartsInFlight, (task) => task());
    const info = await upload.complete();
    onAcknowledged?.();
    return info;
  } catch (error) {
    // Every started part has settled (forEachLimited waits for them): the abort can go at once, in the background.
    logger.debug({ key, err: error }, 'upload of a staging file failed; aborting its multipart upload');
    upload.abandon();
    throw error;
  }
}
