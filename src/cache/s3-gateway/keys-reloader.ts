// The S3 gateway's access keys, kept in step with their file: the kubelet rewrites a mounted Secret in place (a new
// ..data directory swapped in), so a key added, rotated or revoked in the Secret takes effect within a check
// interval, without restarting the cache pods. A file that fails to read or parse keeps the keys in force and is
// logged: a broken edit must not lock every client out, nor let a revoked key back in later than the next good file.
import { promises as fs } from 'node:fs';
import type { Logger } from '../../log/logger';
import { readAccessKeysFile, type AccessKeys } from './access-keys';

/** How often the keys file is looked at for a change. Default 30 s (the kubelet syncs Secrets about once a minute). */
export const KEYS_CHECK_INTERVAL_MS = 30_000;

/** What names a version of the file: a rewritten file has a new inode, time or size. */
async function versionOf(file: string): Promise<string> {
  const stat = await fs.stat(file, { bigint: true });
  return `${stat.ino}:${stat.mtimeNs}:${stat.size}`;
}

/** The access keys of a file, read again when it changes. */
export class ReloadingAccessKeys {
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  private constructor(
    private readonly file: string,
    private keys: AccessKeys,
    private version: string,
    private readonly logger: Logger,
  ) {}

  /** Reads `file` (throws what to fix when it cannot: the server does not start without keys) and checks it every `intervalMs`. */
  static async open(file: string, logger: Logger, intervalMs = KEYS_CHECK_INTERVAL_MS): Promise<ReloadingAccessKeys> {
    const version = await versionOf(file).catch(() => '');
    const keys = new ReloadingAccessKeys(file, await readAccessKeysFile(file), version, logger);
    keys.timer = setInterval(() => void keys.check(), intervalMs);
    keys.timer.unref();
    return keys;
  }

  /** The keys in force now. */
  get current(): AccessKeys {
    return this.keys;
  }

  /** Reads the file again if it changed since the last read; resolves once done (concurrent calls share one check). */
  check(): Promise<void> {
    this.checking ??= this.reload().finally(() => (this.checking = undefined));
    return this.checking;
  }

  /** Stops checking. */
  close(): void {
    clearInterval(this.timer);
  }

  private async reload(): Promise<void> {
    let version: string;
    try {
      version = await versionOf(this.file);
    } catch (error) {
      this.logger.error({ err: error, file: this.file }, 'the S3 gateway access keys file is gone; the keys read before stay in force');
      return;
    }
    if (version === this.version) return;
    try {
      this.keys = await readAccessKeysFile(this.file);
      this.version = version;
      this.logger.info({ file: this.file, accessKeys: this.keys.size }, 'the S3 gateway access keys file changed: its keys are in force now');
    } catch (error) {
      // Judged again at the next check only if it changes again; its message never holds a secret (access-keys.ts).
      this.version = version;
      this.logger.error({ err: error, file: this.file }, 'the S3 gateway access keys file changed but cannot be used; the keys read before stay in force');
    }
  }
}
