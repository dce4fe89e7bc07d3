// `granary mount --background` when the mount cannot start: the real CLI exits 1 with the mount's own
// error in one line and where its log is, and leaves no process behind.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { builtCli } from '../../e2e/support/built-cli';
import { failureLine } from './mount-background';

// Real processes (node, helm) start slowly on a loaded machine: no test here may fail on jest's 5 s default.
jest.setTimeout(60_000);

describe('granary mount --background', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-background-'));
    fs.mkdirSync(path.join(dir, 'folder'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("exits 1 with the mount's own error and its log's path when the mount cannot start", () => {
    const stateDir = path.join(dir, 'state');
    const run = spawnSync(process.execPath, [builtCli(), 'mount', path.join(dir, 'folder'), path.join(dir, 'missing'), '--background', '--state-dir', stateDir], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`mountpoint ${path.join(dir, 'missing')} does not exist`);
    expect(lines[0]).toContain(`its log: ${path.join(stateDir, 'mount.log')}`);
  });
});

describe('failureLine', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-failure-line-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("prefers the process's last human line, else the last error-level log entry, written since the start offset", () => {
    const log = path.join(dir, 'mount.log');
    fs.writeFileSync(log, 'granary: an old failure\n');
    const from = fs.statSync(log).size;
    fs.appendFileSync(log, `${JSON.stringify({ level: 30, msg: 'starting' })}\n${JSON.stringify({ level: 50, msg: 'mount failed', err: { message: 'the bucket is gone' } })}\n`);
    expect(failureLine(log, from)).toBe('mount failed: the bucket is gone');
    fs.appendFileSync(log, 'granary: the bucket b does not exist\n');
    expect(failureLine(log, from)).toBe('the bucket b does not exist');
    expect(failureLine(log, fs.statSync(log).size)).toBeUndefined();
  });
});
