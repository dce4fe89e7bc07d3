// One row of the table: the same work done on a mounted directory or through an object store client.
import type { ObjectStore } from '../../src/objectstore/store';
import type { Fixture } from '../fixture';
import type { BenchOptions, SideName, WorkloadId } from '../options';
import type { Unit } from '../table';

/** What a measured run knows besides the attachment. */
export interface RunContext {
  options: BenchOptions;
  fixture: Fixture;
  side: SideName;
  /** 1-based number of the run. */
  run: number;
  /** The harness's own client, to check what a side wrote and to clean up after it (never timed). */
  verifier: ObjectStore;
  /** Key prefix of the volume (`vol/`). */
  keyPrefix: string;
}

/** The number of one run, in the workload's unit, and anything worth a footnote. */
export interface Measurement {
  value: number;
  note?: string;
}

/** One workload. */
export interface Workload {
  readonly id: WorkloadId;
  readonly unit: Unit;
  /** True for a workload that sends bodies to the server: only there do the sides that need the Expect proxy go through it. */
  readonly uploads?: boolean;
  /** The row's name, with the sizes it ran with. */
  title(options: BenchOptions): string;
  /** How many streams or requests each side has in flight. */
  parallelism(options: BenchOptions): string;
  /** Does the work on the volume mounted at `root`; throws when it fails or reads wrong bytes. */
  onMount(root: string, context: RunContext): Promise<Measurement>;
  /** Does the same work through `store` (keys under context.keyPrefix); throws when it fails or reads wrong bytes. */
  onStore(store: ObjectStore, context: RunContext): Promise<Measurement>;
  /** Untimed clean-up after a run, once the side is detached (e.g. delete what it wrote). */
  afterRun?(context: RunContext): Promise<void>;
}
