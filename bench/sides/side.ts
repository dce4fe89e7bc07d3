// One side of the comparison: something that makes the volume reachable, either as a mounted
// directory (granary, rclone) or as an object store client (direct).
import * as fs from 'node:fs';
import { S3Store } from '../../src/objectstore/s3';
import type { ObjectStore } from '../../src/objectstore/store';
import type { SideName } from '../options';

/** Where the volume lives and how to reach it (handed to each side through its environment, never argv). */
export interface Volume {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  /** The volume's prefix inside the bucket, without slashes at either end. */
  prefix: string;
  /** With an https endpoint: the PEM file of the certificate the server presents, which every side trusts its own way. */
  caFile?: string;
}

/** `{ [variable]: caFile }` for a volume over TLS, else nothing: how a side whose client reads a CA file from its environment trusts the server. */
export function caEnv(volume: Volume, variable: string): NodeJS.ProcessEnv {
  return volume.caFile ? { [variable]: volume.caFile } : {};
}

/** An S3Store (granary's SDK client) of the volume's bucket, trusting the server's certificate over TLS. */
export function volumeStore(volume: Volume): S3Store {
  return new S3Store({
    bucket: volume.bucket,
    endpoint: volume.endpoint,
    region: volume.region,
    credentials: { accessKeyId: volume.accessKeyId, secretAccessKey: volume.secretAccessKey },
    // The bench's own process started before the certificate was made: NODE_EXTRA_CA_CERTS cannot reach it.
    ...(volume.caFile && { ca: fs.readFileSync(volume.caFile, 'utf8') }),
  }, {});
}

/** The volume as a mounted directory. */
export interface MountAttachment {
  kind: 'mount';
  /** The mountpoint: the volume's root. */
  root: string;
  /** The mount process (granary's: the holder of the FUSE connection). */
  pid?: number;
  /** Unmounts and stops the mount process, falling back to a lazy unmount and SIGKILL. */
  detach(): Promise<void>;
}

/** The volume as an object store client. */
export interface StoreAttachment {
  kind: 'store';
  store: ObjectStore;
  /** Key prefix of the volume's files (`prefix/`). */
  keyPrefix: string;
  detach(): Promise<void>;
}

/** A reachable volume. */
export type Attachment = MountAttachment | StoreAttachment;

/** One column of the table. */
export interface Side {
  readonly name: SideName;
  /** What attach() gives: a mount (whose process tree the mount-cost rows measure) or an object store client. */
  readonly kind: Attachment['kind'];
  /**
   * True for a client that sends `Expect: 100-Continue` (aws-sdk-go v1), which the pinned versitygw does not answer:
   * the harness gives this side the endpoint of bench/expect-proxy.ts instead of the server's.
   */
  readonly sendsMixedCaseExpect?: boolean;
  /** Set when the side does not store files as objects (JuiceFS): why the rows that check the bucket cannot run on it. */
  readonly notObjects?: string;
  /** How this side is set up (flags, defaults), for the table footer. */
  readonly settings: string;
  /** How this side trusts the server's certificate in a TLS run (`--tls`), for the table footer. */
  readonly trust: string;
  /** The version of the software on this side, for the table footer. */
  version(): Promise<string>;
  /** Makes the volume reachable; `scratch` is an empty directory this side may use (mountpoint, caches, logs). */
  attach(volume: Volume, scratch: string): Promise<Attachment>;
}
