import * as fs from 'node:fs/promises';
import * as path from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';
/** The hierarchy whose cgroup.procs tracks the harness's processes (the pids controller exists in v1 and v2). */
const TRACKING = 'pids';

/** The mounted cgroup v1 hierarchies (cpu, memory, pids, name=systemd, ...), as folders under /sys/fs/cgroup. */
async function hierarchies(): Promise<string[]> {
  const mounts = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return mounts.split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[4]?.startsWith(`${CGROUP_ROOT}/`) && fields[fields.indexOf('-') + 1] === 'cgroup')
    .map((fields) => fields[4]!);
}

/**
 * Creates the harness's cgroup in every hierarchy (the kubelet's cgroupRoot must exist in each) and
 * its `harness` child, which holds the daemons. A new cpuset cgroup has no CPUs until given its
 * parent's, so those are copied.
 */
export async function createCgroups(name: string): Promise<void> {
  for (const hierarchy of await hierarchies()) {
    for (const dir of [path.join(hierarchy, name), path.join(hierarchy, name, 'harness')]) {
      await fs.mkdir(dir, { recursive: true });
      if (path.basename(hierarchy) === 'cpuset') {
        for (const file of ['cpuset.cpus', 'cpuset.mems']) {
          const current = (await fs.readFile(path.join(dir, file), 'utf8')).trim();
          if (current === '') await fs.writeFile(path.join(dir, file), await fs.readFile(path.join(path.dirname(dir), file), 'utf8'));
        }
      }
    }
  }
}

/**
 * The command line that runs a program inside the harness's cgroup from its first instruction
 * (it joins, then execs), so nothing it forks escapes the cleanup.
 */
export function inCgroup(name: string, command: string, args: readonly string[]): [string, string[]] {
  const procs = path.join(CGROUP_ROOT, TRACKING, name, 'harness', 'cgroup.procs');
  return ['/bin/sh', ['-c', `echo $$ > ${procs} && exec "$@"`, 'sh', command, ...args]];
}

async function cgroupDirs(top: string): Promise<string[]> {
  const found: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    found.push(dir);
    for (const entry of entries) if (entry.isDirectory()) await visit(path.join(dir, entry.name));
  };
  await visit(top);
  return found;
}

/** Every process in the harness's cgroup tree: its daemons, their shims and the pods' containers. */
export async function cgroupProcesses(name: string): Promise<number[]> {
  const pids: number[] = [];
  for (const dir of await cgroupDirs(path.join(CGROUP_ROOT, TRACKING, name))) {
    const procs = await fs.readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    pids.push(...procs.split('\n').filter((line) => line !== '').map(Number));
  }
  return pids;
}

/**
 * Kills every process of the harness's cgroup tree (SIGKILL, again until none is left: a dying
 * process may have forked) and removes the cgroups, deepest first, in every hierarchy.
 */
export async function removeCgroups(name: string, deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (let pids = await cgroupProcesses(name); pids.length > 0; pids = await cgroupProcesses(name)) {
    if (Date.now() > deadline) throw new Error(`processes ${pids.join(' ')} of cgroup ${name} would not die`);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const hierarchy of await hierarchies()) {
    for (const dir of (await cgroupDirs(path.join(hierarchy, name))).reverse()) {
      // A cgroup whose last process just exited can be busy for a moment.
      for (let attempt = 0; ; attempt++) {
        try {
          await fs.rmdir(dir);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') break;
          if (attempt >= 50 || Date.now() > deadline) throw new Error(`cannot remove cgroup ${dir}: ${(error as Error).message}`, { cause: error });
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }
  }
}

/** The harness's cgroups still present, in any hierarchy. */
export async function leftoverCgroups(name: string): Promise<string[]> {
  const found: string[] = [];
  for (const hierarchy of await hierarchies()) {
    if (await fs.access(path.join(hierarchy, name)).then(() => true, () => false)) found.push(path.join(hierarchy, name));
  }
  return found;
}
