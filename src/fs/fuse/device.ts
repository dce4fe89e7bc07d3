// The outside world a FuseSession touches: the /dev/fuse character device, mount(8) and umount(8).
// Exposed for testing: unit tests pass a fake FuseSystem that plays the kernel in memory.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findMount, readMountInfo } from '../../system/mountinfo';
import { readDeviceOnWorker, type DeviceRequestListener } from './device-reader';
import { REQUEST_BUFFER_SIZE } from './protocol';

/** An open connection to the kernel's FUSE device. */
export interface FuseDevice {
  /** The file descriptor, handed to mount(8) so the kernel ties the mount to this connection. */
  readonly fd: number;
  /** Reads one whole request into `buffer` (blocks a threadpool thread until one arrives); resolves to its length. */
  read(buffer: Buffer): Promise<number>;
  /**
   * Delivers requests to `listener` from a reader of its own (a worker thread) until the connection ends, instead
   * of the session calling read() in a loop; absent on devices that only read().
   */
  readOnWorker?(listener: DeviceRequestListener): void;
  /** Writes one whole reply (the chunks form one message: a single writev). */
  write(chunks: Buffer[]): void;
  /** Closes the descriptor. */
  close(): void;
}

/** What to mount: `mount -t TYPE -o OPTIONS SOURCE MOUNTPOINT` with the device as fd 3. */
export interface MountRequest {
  device: FuseDevice;
  mountpoint: string;
  /** Filesystem type as shown in mountinfo: "fuse.<subtype>". */
  type: string;
  /** The source column of mountinfo (fsname). */
  source: string;
  /** Mount options, without the fd= one (added by the implementation). */
  options: string[];
}

/** The side effects of mounting, injectable so unit tests need no kernel. */
export interface FuseSystem {
  /** Opens /dev/fuse. */
  openDevice(): Promise<FuseDevice>;
  /** Serves an inherited, already open /dev/fuse descriptor. */
  adoptDevice(fd: number): FuseDevice;
  /** The kernel's connection id of the FUSE mount at `mountpoint`, when it can tell. */
  connectionOf(mountpoint: string): Promise<number | undefined>;
  /** Makes the kernel send the mount at `mountpoint` one request (a statfs), without waiting for its answer. */
  provoke(mountpoint: string): void;
  /** Mounts a FUSE filesystem served through `request.device`; resolves to its connection id when known. */
  mount(request: MountRequest): Promise<number | undefined>;
  /** Unmounts; `lazy` detaches a busy mount now and finishes when it is no longer used (umount -l). */
  unmount(mountpoint: string, lazy: boolean): Promise<void>;
  /** Aborts a FUSE connection: every pending and future request fails, and device reads end with ENODEV. */
  abort(connection: number): Promise<void>;
}

/** Where the fusectl filesystem lists FUSE connections (one folder per connection id). */
export const FUSE_CONNECTIONS_PATH = '/sys/fs/fuse/connections';

/** The kernel's connection id of a mount: its st_dev as the kernel encodes it (MKDEV: major << 20 | minor). */
export function connectionIdOf(device: string): number | undefined {
  const match = /^(\d+):(\d+)$/.exec(device);
  if (!match) return undefined;
  return Number(match[1]) * 2 ** 20 + Number(match[2]);
}

/** Where the kernel's FUSE device lives. */
export const FUSE_DEVICE_PATH = '/dev/fuse';

/** The fd number the device has inside the mount(8) child: stdio 0-2, then the device. */
const CHILD_DEVICE_FD = 3;

/** Opens the real /dev/fuse. */
export function openFuseDevice(path = FUSE_DEVICE_PATH): FuseDevice {
  return fuseDeviceOf(fs.openSync(path, 'r+'));
}

/** A FuseDevice over an open /dev/fuse descriptor (opened here, or inherited from the mount holder). */
export function fuseDeviceOf(fd: number): FuseDevice {
  return {
    fd,
    read: (buffer) =>
      new Promise((resolve, reject) => {
        fs.read(fd, buffer, 0, buffer.length, null, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead)));
      }),
    readOnWorker: (listener) => readDeviceOnWorker(fd, REQUEST_BUFFER_SIZE, listener),
    // Synchronous on purpose: a reply never blocks (the kernel takes it or rejects it at once), and
    // writing on the main thread keeps the threadpool free for the readers.
    write: (chunks) => {
      if (chunks.length === 1) fs.writeSync(fd, chunks[0] as Buffer);
      else fs.writevSync(fd, chunks);
    },
    close: () => fs.closeSync(fd),
  };
}

/** Runs a command, resolving with its exit code and the tail of its stderr. */
export function runCommand(
  command: string,
  args: string[],
  extraFds: number[] = [],
): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe', ...extraFds] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stderr: stderr.trim() }));
  });
}

/** The real FuseSystem: /dev/fuse plus util-linux mount(8)/umount(8). */
export const linuxFuseSystem: FuseSystem = {
  openDevice: async () => openFuseDevice(),
  adoptDevice: (fd) => fuseDeviceOf(fd),
  connectionOf: async (mountpoint) => {
    const mounted = findMount(readMountInfo(), mountpoint);
    return mounted ? connectionIdOf(mounted.device) : undefined;
  },
  // statfs always goes to the FUSE server (the kernel caches no answer), so one request comes.
  provoke: (mountpoint) => fs.statfs(mountpoint, () => undefined),
  mount: async ({ device, mountpoint, type, source, options }) => {
    // -i: do not look for a /sbin/mount.fuse.* helper; we hand the kernel our own device fd.
    const args = ['-i', '-t', type, '-o', [`fd=${CHILD_DEVICE_FD}`, ...options].join(','), source, mountpoint];
    const { code, stderr } = await runCommand('mount', args, [device.fd]);
    if (code !== 0) throw new Error(`mount ${mountpoint} failed (exit ${code}): ${stderr || 'no message'}`);
    const mounted = findMount(readMountInfo(), mountpoint);
    return mounted ? connectionIdOf(mounted.device) : undefined;
  },
  unmount: async (mountpoint, lazy) => {
    const { code, stderr } = await runCommand('umount', lazy ? ['-l', mountpoint] : [mountpoint]);
    if (code !== 0) throw new Error(`umount${lazy ? ' -l' : ''} ${mountpoint} failed (exit ${code}): ${stderr || 'no message'}`);
  },
  abort: async (connection) => {
    const abortFile = (root: string) => path.join(root, String(connection), 'abort');
    if (fs.existsSync(abortFile(FUSE_CONNECTIONS_PATH))) return fs.writeFileSync(abortFile(FUSE_CONNECTIONS_PATH), '1');
    // fusectl is often not mounted (containers): mount a private instance of it just for this.
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-fusectl-'));
    try {
      const mounted = await runCommand('mount', ['-t', 'fusectl', 'fusectl', root]);
      if (mounted.code !== 0) throw new Error(`cannot mount fusectl to abort FUSE connection ${connection}: ${mounted.stderr}`);
      try {
        fs.writeFileSync(abortFile(root), '1');
      } finally {
        await runCommand('umount', [root]);
      }
    } finally {
      fs.rmdirSync(root);
    }
  },
};
