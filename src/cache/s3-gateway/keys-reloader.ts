// The S3 gateway's access keys, kept in step with their file (reloading-files.ts): a key added, rotated or revoked in
// the Secret takes effect within a check interval, without restarting the cache pods. A file that fails to read or
// parse keeps the keys in force and is logged: a broken edit must not lock every client out, nor let a revoked key
// back in later than the next good file.
import type { Logger } from '../../log/logger';
import { readAccessKeysFile, type AccessKeys } from './access-keys';
import { FILES_CHECK_INTERVAL_MS, ReloadingFiles } from './reloading-files';

/** How often the keys file is looked at for a change. */
export const KEYS_CHECK_INTERVAL_MS = FILES_CHECK_INTERVAL_MS;

/** The access keys of a file, read again when it changes. */
export class ReloadingAccessKeys {
  private constructor(private readonly files: ReloadingFiles<AccessKeys>) {}

  /** Reads `file` (throws what to fix when it cannot: the server does not start without keys) and checks it every `intervalMs`. */
  static async open(file: string, logger: Logger, intervalMs = KEYS_CHECK_INTERVAL_MS): Promise<ReloadingAccessKeys> {
    return new ReloadingAccessKeys(
      await ReloadingFiles.open({
        files: [file],
        // Its messages never hold a secret (access-keys.ts).
        read: () => readAccessKeysFile(file),
        what: 'the S3 gateway access keys file',
        describe: (keys) => ({ accessKeys: keys.size }),
        logger,
        intervalMs,
      }),
    );
  }

  /** The keys in force now. */
  get current(): AccessKeys {
    return this.files.current;
  }

  /** Reads the file again if it changed since the last read; resolves once done (concurrent calls share one check). */
  check(): Promise<void> {
    return this.files.check();
  }

  /** Stops checking. */
  close(): void {
    this.files.close();
  }
}
