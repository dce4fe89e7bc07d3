// The inode table: which node id the kernel knows each path by, and how many lookups it holds.
import { ROOT_NODE_ID } from './fuse/protocol';

/** What a path is in the volume: an object, or a prefix (common prefix or `dir/` marker). */
export type NodeKind = 'file' | 'directory';

/** One node the kernel knows: its id, its path relative to the volume root ('' for the root). */
export interface Inode {
  readonly id: number;
  /** Changes only through InodeTable.rename. */
  path: string;
  readonly kind: NodeKind;
  /** Lookups the kernel holds (each LOOKUP/CREATE/MKDIR reply adds one, FORGET removes some). */
  lookups: number;
}

/** Hears every change of the table the kernel could still refer to later (SessionJournal keeps them for a successor). */
export interface InodeObserver {
  /** The kernel got a new node id. */
  node(id: number, kind: NodeKind, path: string): void;
  /** Nodes moved to new paths. */
  moved(moves: Array<[number, string]>): void;
  /** Nodes lost their paths (deleted or replaced) while the kernel may still hold them. */
  detached(ids: number[]): void;
  /** The kernel forgot these nodes. */
  forgotten(ids: number[]): void;
}

/** A node restored from an earlier process's table: its path, or undefined when it had been detached from it. */
export interface RestoredNode {
  id: number;
  kind: NodeKind;
  path: string | undefined;
}

/**
 * The lookups a restored node is given: its real count (the kernel's) was not kept, so it stays until unmount rather
 * than risk being dropped while the kernel still uses it; what the kernel held at the takeover bounds the cost.
 */
const RESTORED_LOOKUPS = Number.MAX_SAFE_INTEGER;

/** The path of `name` inside directory `parentPath` ('' is the root). */
export function childPath(parentPath: string, name: string): string {
  return parentPath === '' ? name : `${parentPath}/${name}`;
}

/** The directory part of `path` ('' for a top-level name or the root). */
export function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/**
 * Maps node ids to paths and back. Node ids are never reused during the life of the mount, so the
 * generation the kernel asks for is always 0. A node lives while the kernel holds a lookup on it.
 */
export class InodeTable {
  private readonly byId = new Map<number, Inode>();
  private readonly byPathMap = new Map<string, Inode>();
  private nextId = ROOT_NODE_ID + 1;
  /** The root directory; never forgotten. */
  readonly root: Inode = { id: ROOT_NODE_ID, path: '', kind: 'directory', lookups: 1 };

  constructor(private readonly observer?: InodeObserver) {
    this.byId.set(this.root.id, this.root);
    this.byPathMap.set(this.root.path, this.root);
  }

  /** The node with this id, if the kernel still holds it. */
  get(id: number): Inode | undefined {
    return this.byId.get(id);
  }

  /** The current node of a path, if the kernel holds one. */
  byPath(path: string): Inode | undefined {
    return this.byPathMap.get(path);
  }

  /** Nodes currently held (root included). */
  get size(): number {
    return this.byId.size;
  }

  /**
   * Records one more kernel lookup of `path` as `kind` and returns its node. When the path changed
   * kind (a file replaced by a directory), it gets a new node: the kernel must not see one inode
   * change type, and the old node stays until the kernel forgets it.
   */
  remember(path: string, kind: NodeKind): Inode {
    const existing = this.byPathMap.get(path);
    if (existing && (existing.kind === kind || existing === this.root)) {
      existing.lookups++;
      return existing;
    }
    const node: Inode = { id: this.nextId++, path, kind, lookups: 1 };
    this.byId.set(node.id, node);
    this.byPathMap.set(path, node);
    if (existing) this.observer?.detached([existing.id]);
    this.observer?.node(node.id, kind, path);
    return node;
  }

  /**
   * Takes over the nodes an earlier process of this session handed the kernel (replayed from its journal), with their
   * ids: the kernel goes on using them. New ids continue after the highest.
   */
  restore(nodes: Iterable<RestoredNode>): void {
    for (const restored of nodes) {
      if (restored.id === ROOT_NODE_ID) continue;
      const node: Inode = { id: restored.id, path: restored.path ?? '', kind: restored.kind, lookups: RESTORED_LOOKUPS };
      this.byId.set(node.id, node);
      if (restored.path !== undefined) this.byPathMap.set(restored.path, node);
      this.nextId = Math.max(this.nextId, restored.id + 1);
    }
  }

  /**
   * Moves `from` (and, for a directory, every node below it) to `to`, as after a rename: the
   * kernel keeps using the same node ids under their new names. A node that held `to` before is
   * detached from the path (the kernel may still hold it until it forgets it).
   */
  rename(from: string, to: string): void {
    if (from === '' || to === '' || from === to) return;
    const below = `${from}/`;
    const moved = [...this.byPathMap.values()].filter((node) => node.path === from || node.path.startsWith(below));
    const replacedBelow = `${to}/`;
    const replaced: number[] = [];
    for (const [path, node] of this.byPathMap) {
      if (path === to || path.startsWith(replacedBelow)) {
        if (!moved.includes(node)) {
          this.byPathMap.delete(path);
          replaced.push(node.id);
        }
      }
    }
    for (const node of moved) this.byPathMap.delete(node.path);
    for (const node of moved) {
      node.path = to + node.path.slice(from.length);
      this.byPathMap.set(node.path, node);
    }
    this.observer?.detached(replaced);
    this.observer?.moved(moved.map((node) => [node.id, node.path]));
  }

  /** Detaches the node of `path` (and below it) from its name after it was deleted; ids stay until forgotten. */
  detach(path: string): void {
    if (path === '') return;
    const below = `${path}/`;
    const detached: number[] = [];
    for (const [key, node] of [...this.byPathMap]) {
      if (key === path || key.startsWith(below)) {
        this.byPathMap.delete(key);
        detached.push(node.id);
      }
    }
    this.observer?.detached(detached);
  }

  /** The kernel dropped `lookups` references; the node goes away when none are left (never the root). */
  forget(id: number, lookups: number): void {
    const node = this.byId.get(id);
    if (!node || node === this.root) return;
    node.lookups -= lookups;
    if (node.lookups > 0) return;
    this.byId.delete(id);
    if (this.byPathMap.get(node.path) === node) this.byPathMap.delete(node.path);
    this.observer?.forgotten([id]);
  }
}
