// The README's quick start, run as a new user pastes it: the second ```sh block of "## Quick start" (the
// first builds, which npm test has just done), verbatim, with bash -e from the repository's root. It must
// print the file's content, exit 0, and leave no mount and no granary process behind.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { builtCli } from './support/built-cli';
import { until } from './support/until';

const ROOT = path.join(__dirname, '..');

// npx, a mount and its unmount: seconds on a quiet machine, much longer on a loaded one (the block's own bound is 120 s).
jest.setTimeout(180_000);

/** The ```sh blocks of the README's "## Quick start" section, before its first subsection. */
function quickStartBlocks(readme: string): string[] {
  const section = /^## Quick start\n([\s\S]*?)^#{2,3} /m.exec(readme)?.[1];
  if (!section) throw new Error('README.md has no "## Quick start" section');
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((match) => match[1] as string);
}

/** The directory under /tmp the block works in, from its own text. */
function demoDirectory(block: string): string {
  const named = /\/tmp\/[\w.-]+/.exec(block)?.[0];
  if (!named) throw new Error(`the quick start names no directory under /tmp:\n${block}`);
  return named;
}

function mountedAt(mountpoint: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => line.split(' ')[4] === mountpoint);
}

describe("the README's quick start", () => {
  const blocks = quickStartBlocks(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
  const block = blocks.find((text) => text.includes('granary mount'));
  const demo = block === undefined ? '' : demoDirectory(block);

  beforeAll(() => {
    builtCli(); // the build the first block makes; fails with the fix when it is missing
    if (demo !== '') fs.rmSync(demo, { recursive: true, force: true });
  });
  afterAll(() => {
    if (demo === '') return;
    const mountpoint = path.join(demo, 'mnt');
    if (mountedAt(mountpoint)) spawnSync('umount', ['-l', mountpoint]);
    fs.rmSync(demo, { recursive: true, force: true });
  });

  it('builds first, then mounts, reads and unmounts when pasted as written', () => {
    expect(blocks[0]).toMatch(/npm run build/);
    expect(block).toBeDefined();
    const run = spawnSync('bash', ['-euo', 'pipefail', '-c', block as string], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: expect.stringMatching(/^granary: mounted /) });
    expect(run.stdout).toBe('hello\n');
    // umount ended the mount, and its process with it.
    expect(mountedAt(path.join(demo, 'mnt'))).toBe(false);
    const pid = Number(/\(pid (\d+),/.exec(run.stderr)?.[1]);
    expect(pid).toBeGreaterThan(0);
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    return until(() => !alive(), `the background mount (pid ${pid}) ends after umount`);
  });
});
