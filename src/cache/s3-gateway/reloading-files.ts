// What a server reads from files of a mounted Secret, kept in step with them: the kubelet rewrites a mounted Secret in
// place (a new ..data directory swapped in), so a rotated key or certificate takes effect within a check interval,
// without restarting the cache pods. Files that fail to read or to load keep what is in force and are logged: a
// broken edit must not take the endpoint down.
import { promises as fs } from 'node:fs';
import type { Logger } from '../../log/logger';

/** How often the files are looked at for a change. Default 30 s (the kubelet syncs Secrets about once a minute). */
export const FILES_CHECK_INTERVAL_MS = 30_000;

/** What names a version of the files: a rewritten file has a new inode, time or size. */
async function versionOf(files: readonly string[]): Promise<string> {
  const versions = await Promise.all(
    files.map(async (file) => {
      const stat = await fs.stat(file, { bigint: true });
      return `${stat.ino}:${stat.mtimeNs}:${stat.size}`;
    }),
  );
  return versions.join('/');
}

/** How a ReloadingFiles reads its files and speaks of them. */
export interface ReloadingFilesOptions<T> {
  files: readonly string[];
  /** Reads and checks the files; throws what to fix (never a secret's text). */
  read: () => Promise<T>;
  /** What the files hold, for the log ("the S3 gateway access keys"). */
  what: string;
  /** The log's words once a new version is in force. */
  describe: (value: T) => Record<string, unknown>;
  /** Hears each new version put in force (not the first). */
  onChange?: (value: T) => void;
  logger: Logger;
  intervalMs?: number;
}

/** A value read from files, read again when they change. */
export class ReloadingFiles<T> {
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  private constructor(
    private readonly options: ReloadingFilesOptions<T>,
    private value: T,
    private version: string,
  ) {}

  /** Reads the files (throws what to fix when it cannot: the server does not start without them) and checks them every interval. */
  static async open<T>(options: ReloadingFilesOptions<T>): Promise<ReloadingFiles<T>> {
    const version = await versionOf(options.files).catch(() => '');
    const reloading = new ReloadingFiles(options, await options.read(), version);
    reloading.timer = setInterval(() => void reloading.check(), options.intervalMs ?? FILES_CHECK_INTERVAL_MS);
    reloading.timer.unref();
    return reloading;
  }

  /** The value in force now. */
  get current(): T {
    return this.value;
  }

  /** Reads the files again if they changed since the last read; resolves once done (concurrent calls share one check). */
  check(): Promise<void> {
    this.checking ??= this.reload().finally(() => (this.checking = undefined));
    return this.checking;
  }

  /** Stops checking. */
  close(): void {
    clearInterval(this.timer);
  }

  private async reload(): Promise<void> {
    const { files, what, logger } = this.options;
    let version: string;
    try {
      version = await versionOf(files);
    } catch (error) {
      logger.error({ err: error, files }, `${what}: a file is gone; what was read before stays in force`);
      return;
    }
    if (version === this.version) return;
    try {
      this.value = await this.options.read();
      this.version = version;
      logger.info({ files, ...this.options.describe(this.value) }, `${what} changed: the new version is in force now`);
      this.options.onChange?.(this.value);
    } catch (error) {
      // Judged again at the next check only if it changes again.
      this.version = version;
      logger.error({ err: error, files }, `${what} changed but cannot be used; what was read before stays in force`);
    }
  }
}
