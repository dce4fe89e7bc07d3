// The S3 gateway's access keys, kept in step with their file (reloading-files.ts): a key added, rotated or revoked in
// the Secret takes effect within a check interval, without restarting the cache pods. A file that fails to read or
// parse keeps the keys in force and is logged: a broken edit must not lock every client out, nor let a revoked key
// back in later than the next good file.
import type { Logger } from '../../log/logger';
import { readAccessKeysFile, type AccessKeys } from './access-keys';
import { FILES_CHECK_INTERVAL_MS, ReloadingFiles } from './reloading-files';

/** Reads the keys of `file` (throws what to fix when it cannot: the server does not start without keys) and again when it changes. */
export function openAccessKeys(file: string, logger: Logger, intervalMs = FILES_CHECK_INTERVAL_MS): Promise<ReloadingFiles<AccessKeys>> {
  return ReloadingFiles.open({
    files: [file],
    // Its messages never hold a secret (access-keys.ts).
    read: () => readAccessKeysFile(file),
    what: 'the S3 gateway access keys file',
    describe: (keys) => ({ accessKeys: keys.size }),
    logger,
    intervalMs,
  });
}
