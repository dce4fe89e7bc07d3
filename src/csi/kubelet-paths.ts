// Where the node service may mount: below the kubelet's directory, never through a symbolic link.
// kubelet makes every staging and target path under its --root-dir; a path anywhere else, or one a
// link redirects, would let a CSI request mount a bucket over any host directory (mount(8), statfs and
// rmdir all follow links). The kubelet directory itself may be a link (some distributions move it);
// links below it are what is refused.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CsiError } from './errors';

/** errno codes after which lstat cannot look further down a path: nothing there, or a dead FUSE mount in the way. */
const WALK_STOPS = new Set(['ENOENT', 'ENOTDIR', 'ENOTCONN', 'ECONNABORTED', 'EIO', 'ESTALE']);

/** The first symbolic link on a path below the kubelet directory. */
export interface LinkOnPath {
  /** The path up to and including the link. */
  link: string;
  /** What the link says (readlink: never followed). */
  pointsTo: string;
  /** True when the link is the path's last component. */
  final: boolean;
}

/** Checks staging and target paths against the kubelet directory. */
export class KubeletPaths {
  /** The kubelet directory, absolute and normalised. */
  readonly root: string;

  constructor(root: string) {
    if (!path.isAbsolute(root)) throw new Error(`the kubelet directory must be an absolute path, got ${JSON.stringify(root)}`);
    this.root = path.resolve(root);
  }

  /**
   * Checks a request's path field: present, absolute ("an absolute path in the root filesystem", as the
   * spec demands) and below the kubelet directory. Returns it lexically normalised (no `..`, no trailing `/`).
   */
  require(value: string | undefined, field: string): string {
    if (!value) throw new CsiError('INVALID_ARGUMENT', `${field} is required`);
    if (!path.isAbsolute(value)) throw new CsiError('INVALID_ARGUMENT', `${field} must be an absolute path, got ${JSON.stringify(value)}`);
    const normalised = path.resolve(value);
    const relative = path.relative(this.root, normalised);
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
      throw new CsiError(
        'INVALID_ARGUMENT',
        `${field} ${normalised} is not below the kubelet directory ${this.root}: granary mounts only where kubelet asks, under its root directory (if kubelet runs with another --root-dir, start granary csi with --kubelet-dir set to it)`,
      );
    }
    return normalised;
  }

  /**
   * The first symbolic link on `target` below the kubelet directory, or undefined when there is none.
   * Each component is looked at with lstat, from the kubelet directory down, so nothing is followed;
   * this is realpath of the part that exists, compared with the lexical path one component at a time
   * (and it names the link). It stops where the path ends, or at a dead FUSE mount (which is no link).
   */
  async findLink(target: string): Promise<LinkOnPath | undefined> {
    const components = path.relative(this.root, target).split(path.sep);
    let current = this.root;
    for (const [index, component] of components.entries()) {
      current = path.join(current, component);
      let stats: fs.Stats;
      try {
        stats = await fs.promises.lstat(current);
      } catch (error) {
        if (WALK_STOPS.has((error as NodeJS.ErrnoException).code ?? '')) return undefined;
        throw error;
      }
      if (stats.isSymbolicLink()) {
        return { link: current, pointsTo: await fs.promises.readlink(current), final: index === components.length - 1 };
      }
    }
    return undefined;
  }

  /** Throws INVALID_ARGUMENT when `target` goes through a symbolic link below the kubelet directory. */
  async refuseLinks(target: string, field: string): Promise<void> {
    const found = await this.findLink(target);
    if (!found) return;
    const where = found.final ? `is a symbolic link (to ${found.pointsTo})` : `goes through the symbolic link ${found.link} (to ${found.pointsTo})`;
    throw new CsiError('INVALID_ARGUMENT', `${field} ${target} ${where}: granary mounts only on real directories below the kubelet directory ${this.root}, never through a link; remove the link`);
  }
}
