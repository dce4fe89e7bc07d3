// A side made of a peer's FUSE mounter (s3fs, geesefs, Mountpoint for S3, JuiceFS): its command line is built
// by a pure function (unit-tested), credentials go to its environment or a 0600 file, never argv, and a
// mounter that is not on PATH makes its column say "not installed".
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SideName } from '../options';
import { run } from '../exec';
import { startMount } from './mount-process';
import type { Attachment, Side, Volume } from './side';

/** A file to write before the mount (mode 0600: it holds credentials). */
export interface SecretFile {
  path: string;
  content: string;
}

/** How to run one mount: what the side's plan() builds from the volume and the scratch dir. */
export interface MountPlan {
  args: string[];
  /** The whole environment of the mounter. */
  env: NodeJS.ProcessEnv;
  secrets: SecretFile[];
}

/** What makes one peer's side. */
export interface FuseSideSpec {
  name: SideName;
  /** The mounter's binary, looked up on PATH. */
  command: string;
  /** The type mountinfo shows once mounted (`fuse.s3fs`). */
  fsType: string;
  /** Flags and why, for the footer. */
  settings: string;
  /** How it trusts the server's certificate in a TLS run, for the footer. */
  trust: string;
  /** The side's version from `command --version` output. */
  parseVersion(output: string): string;
  /** The mount's command line, environment and credential files, for the volume mounted at `mountpoint`. */
  plan(volume: Volume, mountpoint: string, scratch: string): MountPlan;
  /** Work before the mount (JuiceFS formats its volume); `scratch` is this run's folder. */
  prepare?(volume: Volume, scratch: string): Promise<void>;
  sendsMixedCaseExpect?: boolean;
  /** Why the workloads that check the bucket for what was written cannot run on this side, if they cannot. */
  notObjects?: string;
}

/** The text a column shows for a mounter that is not on PATH. */
export const notInstalled = (command: string) => `not installed (${command} is not on PATH)`;

/** Writes the credential files of a plan, readable by their owner only. */
export function writeSecrets(secrets: readonly SecretFile[]): void {
  for (const secret of secrets) {
    fs.writeFileSync(secret.path, secret.content, { mode: 0o600 });
    // The mode of writeFileSync applies only to a new file, and through the umask: set it outright.
    fs.chmodSync(secret.path, 0o600);
  }
}

/** The side of one peer's mounter. */
export function fuseSide(spec: FuseSideSpec): Side {
  return {
    name: spec.name,
    kind: 'mount',
    settings: spec.settings,
    trust: spec.trust,
    ...(spec.sendsMixedCaseExpect && { sendsMixedCaseExpect: true }),
    ...(spec.notObjects && { notObjects: spec.notObjects }),
    async version() {
      const result = await run(spec.command, ['--version']);
      if (result.code === 127) throw new Error(notInstalled(spec.command));
      return spec.parseVersion(`${result.stdout}\n${result.stderr}`);
    },
    async attach(volume: Volume, scratch: string): Promise<Attachment> {
      await spec.prepare?.(volume, scratch);
      const mountpoint = path.join(scratch, 'mnt');
      const plan = spec.plan(volume, mountpoint, scratch);
      writeSecrets(plan.secrets);
      const mount = await startMount({
        command: spec.command,
        args: plan.args,
        env: plan.env,
        mountpoint,
        fsType: spec.fsType,
        logFile: path.join(scratch, `${spec.name}-mount.log`),
        unmount: async (_child, root) => {
          const result = await run('fusermount3', ['-u', root]);
          if (result.code !== 0) throw new Error(`fusermount3 -u ${root}: ${result.stderr.trim()}`);
        },
      });
      return { kind: 'mount', ...mount };
    },
  };
}

/** The first line of a `--version` output that matches `pattern`'s group 1, or the first line. */
export function versionLine(output: string, pattern: RegExp): string {
  const match = pattern.exec(output);
  return match?.[1] ?? output.trim().split('\n')[0] ?? 'unknown';
}
