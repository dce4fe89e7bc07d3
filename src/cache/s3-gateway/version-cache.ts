// The origin's HEAD of an object, kept for a short while. A ranged download (boto3's download_file, the AWS CLI, a
// model loader) sends one GetObject per 8 MiB chunk, and each needs the object's version (ETag, size, date) to
// judge its conditions and address its blocks; without this cache every chunk costs one origin round trip, 128 for
// a 1 GiB file. A version is kept `ttlMs` from the moment its HEAD was sent, as a mount keeps attributes for
// attrTimeoutMs; concurrent requests for one object share one HEAD. The blocks are addressed by ETag, so a version
// kept a moment too long never mixes two objects' bytes: at worst a reader gets the version it would have got had it
// asked `ttlMs` earlier, and a fill that finds the object changed asks again (`fresh`).
import type { ObjectInfo } from '../../objectstore/store';
import { untilAborted } from '../../util/abortable';
import { SingleFlight } from '../../util/single-flight';

/** Reads an object's version at the origin. */
export type HeadObject = (bucket: string, key: string, signal: AbortSignal) => Promise<ObjectInfo>;

/** How long versions are kept and how many. */
export interface VersionCacheOptions {
  /** How long a version answers requests after its HEAD was sent; 0 sends a HEAD for every request. */
  ttlMs: number;
  /** Versions kept at most (the oldest go first). */
  maxEntries: number;
  /** Now in ms (tests move it). */
  now?: () => number;
}

/** What a lookup found, and where. */
export interface VersionLookup {
  object: ObjectInfo;
  /** Whether the origin was asked for this request (false: kept, or shared with a HEAD already in flight). */
  fromOrigin: boolean;
}

interface Kept {
  object: ObjectInfo;
  /** When its HEAD was sent. */
  askedAt: number;
}

/** The origin's HEADs of objects, each kept `ttlMs` and shared by the requests that arrive meanwhile. */
export class VersionCache {
  private readonly kept = new Map<string, Kept>();
  private readonly inFlight = new SingleFlight<Kept>();
  private readonly now: () => number;

  constructor(
    private readonly head: HeadObject,
    private readonly options: VersionCacheOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Versions kept now, for tests and metrics. */
  get size(): number {
    return this.kept.size;
  }

  /**
   * The object's version: kept, or from the origin. `fresh` skips what is kept (and a HEAD in flight, which may have
   * been sent before the caller saw a change). `signal` ends this caller's wait, not a HEAD other requests share.
   */
  async lookup(bucket: string, key: string, signal: AbortSignal, fresh = false): Promise<VersionLookup> {
    if (this.options.ttlMs <= 0) return { object: await this.head(bucket, key, signal), fromOrigin: true };
    // A bucket name has no '/', so this names one object.
    const id = `${bucket}/${key}`;
    if (fresh) {
      this.kept.delete(id);
      return { object: (await untilAborted(this.ask(id, bucket, key), signal)).object, fromOrigin: true };
    }
    const kept = this.kept.get(id);
    if (kept && this.now() - kept.askedAt < this.options.ttlMs) return { object: kept.object, fromOrigin: false };
    const joined = this.inFlight.has(id);
    const answer = await untilAborted(this.inFlight.run(id, () => this.ask(id, bucket, key)), signal);
    return { object: answer.object, fromOrigin: !joined };
  }

  /** Sends the HEAD (with no caller's signal: others may be waiting on it) and keeps its answer; failures are not kept. */
  private async ask(id: string, bucket: string, key: string): Promise<Kept> {
    const askedAt = this.now();
    const object = await this.head(bucket, key, new AbortController().signal);
    const answer = { object, askedAt };
    const current = this.kept.get(id);
    // A slower, older HEAD does not replace a newer answer.
    if (!current || current.askedAt <= askedAt) {
      this.kept.delete(id);
      this.kept.set(id, answer);
      this.evict();
    }
    return answer;
  }

  /** Drops expired versions, then the oldest beyond maxEntries (a Map iterates in insertion order). */
  private evict(): void {
    const now = this.now();
    for (const [id, kept] of this.kept) {
      if (this.kept.size <= this.options.maxEntries && now - kept.askedAt < this.options.ttlMs) break;
      this.kept.delete(id);
    }
  }
}
