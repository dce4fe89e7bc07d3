import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { leftoverCgroups, removeCgroups } from './cgroups';
import { type ClusterConfig, lockFile } from './config';
import { run } from './exec';
import { mountsUnder, unmountAllUnder } from './mounts';
import { CNI_NETWORK, nodeDirs } from './components';
import { lockHolder } from './lock';
import { ownIptablesRules, tearDownNetwork } from './network';
import { processesNaming } from './processes';

/**
 * Folders the components create outside baseDir whatever they are told (paths compiled in):
 * containerd 1.6's shim sockets, libcni's result cache, the kubelet's device-plugin folder and its
 * container log links. They are removed only when empty (a foreign user's files keep them), after
 * the harness's own entries in them are gone.
 */
const OUTSIDE_FOLDERS = ['/run/containerd/s', '/run/containerd', '/var/lib/cni/results', '/var/lib/cni',
  '/var/lib/kubelet/device-plugins', '/var/lib/kubelet', '/var/log/containers'];
const CONTAINER_LOG_LINKS = '/var/log/containers';
const CNI_RESULTS = '/var/lib/cni/results';
const SHIM_SOCKETS = '/run/containerd/s';
/** The kubelet's device-manager socket, at a path compiled in; left behind when the kubelet is killed. */
const DEVICE_PLUGIN_SOCKET = '/var/lib/kubelet/device-plugins/kubelet.sock';

/** The paths of the sockets bound by live processes (/proc/net/unix). */
async function boundSockets(): Promise<Set<string>> {
  const lines = (await fs.readFile('/proc/net/unix', 'utf8')).split('\n');
  return new Set(lines.map((line) => line.trim().split(/\s+/)[7]).filter((file): file is string => file !== undefined));
}

/** Whether a socket file has no live socket bound to it (no process listens there any more). */
async function staleSocket(file: string, bound: Set<string>): Promise<boolean> {
  const stat = await fs.lstat(file).catch(() => undefined);
  return stat?.isSocket() === true && !bound.has(file);
}

/**
 * The ids of the harness's pod sandboxes: containerd's tasks under its state dir, and the sandboxes
 * libcni cached a result of the harness's network for.
 */
async function sandboxIds(config: ClusterConfig): Promise<Set<string>> {
  const ids = new Set(await fs.readdir(path.join(nodeDirs(config).containerdState, 'io.containerd.runtime.v2.task', 'k8s.io')).catch(() => []));
  for (const entry of await fs.readdir(CNI_RESULTS).catch(() => [] as string[])) {
    const match = new RegExp(`^${CNI_NETWORK}-([0-9a-f]+)-eth0$`).exec(entry);
    if (match) ids.add(match[1]!);
  }
  return ids;
}

/**
 * The harness's entries in the folders outside baseDir: container log links into baseDir, libcni's
 * results for its sandboxes (its network's and containerd's loopback), its sandboxes' shim sockets
 * (containerd 1.6 names them sha256(address/namespace/id)), and a stale socket of a killed kubelet
 * or shim where only the harness's components put one.
 */
async function outsideEntries(config: ClusterConfig): Promise<string[]> {
  const found = new Set<string>();
  for (const entry of await fs.readdir(CONTAINER_LOG_LINKS).catch(() => [] as string[])) {
    const link = path.join(CONTAINER_LOG_LINKS, entry);
    const target = await fs.readlink(link).catch(() => '');
    if (target.startsWith(`${config.baseDir}/`)) found.add(link);
  }
  const address = nodeDirs(config).containerdSocket;
  for (const id of await sandboxIds(config)) {
    for (const file of [path.join(CNI_RESULTS, `${CNI_NETWORK}-${id}-eth0`), path.join(CNI_RESULTS, `cni-loopback-${id}-lo`),
      path.join(SHIM_SOCKETS, createHash('sha256').update(path.join(address, 'k8s.io', id)).digest('hex'))]) {
      if (await fs.lstat(file).then(() => true, () => false)) found.add(file);
    }
  }
  const bound = await boundSockets();
  for (const file of [DEVICE_PLUGIN_SOCKET, ...(await fs.readdir(SHIM_SOCKETS).catch(() => [] as string[])).map((name) => path.join(SHIM_SOCKETS, name))]) {
    if (await staleSocket(file, bound)) found.add(file);
  }
  return [...found];
}

/**
 * Removes whatever a run of the harness left, found only by the names it owns: processes of its
 * cgroup or naming its folder (killed), mounts under its folder (unmounted, the pods' network
 * namespaces among them), its iptables rules and bridge, its cgroups, then its folder's contents
 * except the last run's logs. Safe to run at any time, and twice.
 */
export async function cleanUpNode(config: ClusterConfig): Promise<void> {
  // Only the process that holds the lock (its boot and its teardown) may clean up under a live node.
  const holder = lockHolder(lockFile(config));
  if (holder !== undefined && holder !== process.pid) throw new Error(`not cleaning up: the test node is in use by process ${holder}`);
  for (const { pid } of await processesNaming(config.baseDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  await removeCgroups(config.cgroup);
  await unmountAllUnder(config.baseDir);
  await tearDownNetwork(config);
  for (const entry of await outsideEntries(config)) await fs.rm(entry, { force: true });
  for (const folder of OUTSIDE_FOLDERS) await fs.rmdir(folder).catch(() => undefined);
  await fs.mkdir(config.baseDir, { recursive: true });
  for (const entry of await fs.readdir(config.baseDir)) {
    if (entry !== 'logs') await fs.rm(path.join(config.baseDir, entry), { recursive: true, force: true });
  }
  // A dead run's lock goes; this process's own stays until it releases it.
  const lock = await fs.readFile(lockFile(config), 'utf8').catch(() => undefined);
  if (lock !== undefined && lock.trim() !== String(process.pid)) await fs.rm(lockFile(config), { force: true });
}

/** What of the harness is still on the machine: empty when a teardown was complete. */
export interface Leftovers {
  readonly processes: readonly string[];
  readonly mounts: readonly string[];
  readonly links: readonly string[];
  readonly iptablesRules: readonly string[];
  readonly cgroups: readonly string[];
  /** Files of the harness's outside baseDir: log links into it, CNI results and shim sockets of its sandboxes, stale sockets. */
  readonly files: readonly string[];
}

/** Looks for anything of the harness's: processes naming its folder, mounts under it, its links, rules and cgroups. */
export async function findLeftovers(config: ClusterConfig): Promise<Leftovers> {
  const { stdout } = await run('ip', ['-o', 'link', 'show']);
  const links = stdout.split('\n').filter((line) => line.includes(config.bridge));
  return {
    processes: (await processesNaming(config.baseDir)).map(({ pid, command }) => `${pid} ${command}`),
    mounts: await mountsUnder(config.baseDir),
    links,
    iptablesRules: await ownIptablesRules(config),
    cgroups: await leftoverCgroups(config.cgroup),
    files: [...await outsideEntries(config), ...(await fs.access(lockFile(config)).then(() => [lockFile(config)], () => []))],
  };
}
