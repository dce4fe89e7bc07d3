// Bounds how many fetches run at once, demand reads ahead of readahead.

/** Why a fetch runs: a reader waits on it (demand) or it is a guess about the future (readahead). */
export type FetchPriority = 'demand' | 'readahead';

/** A scheduled task: its result, and a way to move it to the demand queue while it still waits. */
export interface ScheduledFetch<T> {
  readonly result: Promise<T>;
  /** A reader now waits on this task: if it has not started, it goes to the demand queue. */
  promote(): void;
}

interface Waiting {
  start: () => void;
  priority: FetchPriority;
}

/**
 * Runs at most `limit` tasks at once. Waiting demand tasks start before any waiting readahead task, so
 * a window of prefetches queued by sequential readers never delays a read an application waits on
 * by more than one fetch.
 */
export class FetchLimiter {
  private running = 0;
  private readonly demand: Waiting[] = [];
  private readonly readahead: Waiting[] = [];

  constructor(readonly limit: number) {}

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.demand.length + this.readahead.length;
  }

  /** Queues `task`; it runs once a slot is free and its turn comes. */
  schedule<T>(priority: FetchPriority, task: () => Promise<T>): ScheduledFetch<T> {
    let waiting: Waiting | undefined;
    const result = new Promise<T>((resolve, reject) => {
      const start = () => {
        this.running++;
        task()
          .then(resolve, reject)
          .finally(() => {
            this.running--;
            this.startNext();
          });
      };
      if (this.running < this.limit) start();
      else {
        waiting = { start, priority };
        (priority === 'demand' ? this.demand : this.readahead).push(waiting);
      }
    });
    return {
      result,
      promote: () => {
        if (!waiting || waiting.priority === 'demand') return;
        const index = this.readahead.indexOf(waiting);
        if (index < 0) return; // already started
        this.readahead.splice(index, 1);
        waiting.priority = 'demand';
        this.demand.push(waiting);
      },
    };
  }

  private startNext(): void {
    const next = this.demand.shift() ?? this.readahead.shift();
    next?.start();
  }
}
