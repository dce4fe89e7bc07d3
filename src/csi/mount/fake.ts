import * as path from 'node:path';
import { BIND_MOUNT_FLAGS, findMount, type Mounter, type MountEntry, type MountState } from './mounter';
import { mountSource, type MountRecord, type MountRequest, type MountSupervisor } from './supervisor';

/** One call the fake recorded, for tests that assert what was done. */
export interface FakeMounterCall {
  method: 'mount' | 'bindMount' | 'unmount';
  target: string;
  source?: string;
  readOnly?: boolean;
}

/** Errors a fake throws from the next call of a method, once each (shared by the fakes of this folder). */
export class NextFailures<Method extends string> {
  private readonly failures = new Map<Method, Error>();

  /** Makes the next call of `method` throw `error`. */
  set(method: Method, error: Error): void {
    this.failures.set(method, error);
  }

  /** Throws the error set for `method`, once. */
  throwIfSet(method: Method): void {
    const error = this.failures.get(method);
    if (error) {
      this.failures.delete(method);
      throw error;
    }
  }
}

/**
 * An in-memory mount table for unit tests. It never touches the system: `markCorrupt` simulates a
 * FUSE process that died, and `failNext` makes the next call of a method throw.
 */
export class FakeMounter implements Mounter {
  /** The mount table, in mount order. */
  readonly mounts: MountEntry[] = [];
  /** Every change made, in order. */
  readonly calls: FakeMounterCall[] = [];
  private readonly corrupt = new Set<string>();
  private readonly failures = new NextFailures<'mount' | 'bindMount' | 'unmount'>();
  private nextId = 100;
  private nextDevice = 1;

  /** Adds a mount as if mount(8) had made it. */
  async mount(source: string, target: string, fstype: string, options: string[]): Promise<void> {
    this.failures.throwIfSet('mount');
    this.calls.push({ method: 'mount', target: path.resolve(target), source });
    this.add({ source, target, fsType: fstype, device: `0:${this.nextDevice++}`, readOnly: options.includes('ro') });
  }

  /** Adds a bind mount sharing the source's device (the source must be mounted). */
  async bindMount(source: string, target: string, readOnly: boolean): Promise<void> {
    this.failures.throwIfSet('bindMount');
    this.calls.push({ method: 'bindMount', target: path.resolve(target), source: path.resolve(source), readOnly });
    const from = findMount(this.mounts, source);
    if (!from) throw new Error(`fake bind: ${source} is not a mount point`);
    this.add({ source: from.source, target, fsType: from.fsType, device: from.device, readOnly, flags: [...BIND_MOUNT_FLAGS] });
  }

  /** Removes every mount at `target` (live or corrupt). */
  async unmount(target: string): Promise<void> {
    this.failures.throwIfSet('unmount');
    const resolved = path.resolve(target);
    this.calls.push({ method: 'unmount', target: resolved });
    for (let i = this.mounts.length - 1; i >= 0; i--) {
      if (this.mounts[i]?.mountPoint === resolved) this.mounts.splice(i, 1);
    }
    this.corrupt.delete(resolved);
  }

  /** Looks the path up in the table. */
  async isMountPoint(target: string): Promise<MountState> {
    const resolved = path.resolve(target);
    if (!findMount(this.mounts, resolved)) return 'not-mounted';
    return this.corrupt.has(resolved) ? 'corrupt' : 'mounted';
  }

  /** A copy of the table. */
  async listMounts(): Promise<MountEntry[]> {
    return this.mounts.map((entry) => ({ ...entry }));
  }

  /** Adds a mount without recording a call (test setup, or a fake supervisor mounting a volume). */
  add(mount: { source: string; target: string; fsType: string; device?: string; readOnly?: boolean; flags?: string[] }): MountEntry {
    const entry: MountEntry = {
      mountId: this.nextId++,
      device: mount.device ?? `0:${this.nextDevice++}`,
      root: '/',
      mountPoint: path.resolve(mount.target),
      mountOptions: [mount.readOnly ? 'ro' : 'rw', ...(mount.flags ?? []), 'relatime'],
      fsType: mount.fsType,
      source: mount.source,
      superOptions: ['rw'],
    };
    this.mounts.push(entry);
    return entry;
  }

  /** Makes every mount at `target` (and every bind of it) dead, as when its FUSE process is killed. */
  markCorrupt(target: string): void {
    const entry = findMount(this.mounts, target);
    for (const other of this.mounts) {
      if (other.mountPoint === path.resolve(target) || (entry && other.device === entry.device)) this.corrupt.add(other.mountPoint);
    }
  }

  /** Makes the next call of `method` throw `error`. */
  failNext(method: 'mount' | 'bindMount' | 'unmount', error: Error): void {
    this.failures.set(method, error);
  }
}

/**
 * An in-memory supervisor for unit tests: start() "mounts" the volume in a FakeMounter as
 * `fuse.granary` (read-only when asked); stop() forgets the process and leaves the mount, like a
 * process that was killed before it could unmount.
 */
export class FakeMountProcesses implements MountSupervisor {
  /** Every start request, in order. */
  readonly starts: MountRequest[] = [];
  /** Every volume stopped, in order. */
  readonly stops: string[] = [];
  private readonly running = new Map<string, MountRecord>();
  private failure: Error | undefined;
  private gate: Promise<void> | undefined;

  constructor(private readonly mounter: FakeMounter) {}

  /** Records the request and mounts the volume in the fake mount table. */
  async start(request: MountRequest): Promise<MountRecord> {
    this.starts.push(request);
    if (this.gate) await this.gate;
    if (this.failure) {
      const failure = this.failure;
      this.failure = undefined;
      throw failure;
    }
    this.mounter.add({ source: mountSource(request.location), target: request.stagingTargetPath, fsType: 'fuse.granary', readOnly: request.readOnly });
    const record: MountRecord = { volumeId: request.volumeId, stagingTargetPath: path.resolve(request.stagingTargetPath), readOnly: request.readOnly, logHint: `the mount log at /fake/${request.volumeId}.log` };
    this.running.set(request.volumeId, record);
    return record;
  }

  /** Forgets the volume's process. */
  async stop(volumeId: string): Promise<boolean> {
    this.stops.push(volumeId);
    return this.running.delete(volumeId);
  }

  /** The volume's "running" process. */
  describe(volumeId: string): MountRecord | undefined {
    return this.running.get(volumeId);
  }

  list(): MountRecord[] {
    return [...this.running.values()];
  }

  /** Nothing to adopt in memory. */
  async adopt(): Promise<void> {}

  /** Makes the next start() throw `error` (after the gate, if any). */
  failNext(error: Error): void {
    this.failure = error;
  }

  /** Makes start() wait until the returned function is called (to hold an operation in flight). */
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise((resolve) => (release = resolve));
    return () => {
      this.gate = undefined;
      release();
    };
  }
}
