import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KubeletPaths } from './kubelet-paths';

describe('KubeletPaths', () => {
  let dir: string;
  let root: string;
  let paths: KubeletPaths;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-kubelet-paths-'));
    root = path.join(dir, 'kubelet');
    fs.mkdirSync(path.join(root, 'pods', 'p1'), { recursive: true });
    paths = new KubeletPaths(`${root}/`);
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('normalises a path below the root and refuses one that is not', () => {
    expect(paths.require(`${root}/pods/./p1/../p1/mount/`, 'target_path')).toBe(path.join(root, 'pods', 'p1', 'mount'));
    expect(() => paths.require(root, 'target_path')).toThrow(`target_path ${root} is not below the kubelet directory ${root}`);
    expect(() => paths.require(`${root}-other/pods`, 'target_path')).toThrow('is not below the kubelet directory');
    expect(() => paths.require(`${root}/../etc`, 'target_path')).toThrow(`target_path ${path.join(dir, 'etc')} is not below`);
    expect(() => paths.require('pods/p1', 'target_path')).toThrow('target_path must be an absolute path, got "pods/p1"');
    expect(() => paths.require(undefined, 'target_path')).toThrow('target_path is required');
  });

  it('refuses a relative root', () => {
    expect(() => new KubeletPaths('var/lib/kubelet')).toThrow(/must be an absolute path/);
  });

  it('finds no link on a real path, whether it exists, ends early, or runs into a file', async () => {
    expect(await paths.findLink(path.join(root, 'pods', 'p1'))).toBeUndefined();
    expect(await paths.findLink(path.join(root, 'pods', 'p2', 'volumes', 'mount'))).toBeUndefined();
    fs.writeFileSync(path.join(root, 'pods', 'file'), '');
    expect(await paths.findLink(path.join(root, 'pods', 'file', 'mount'))).toBeUndefined();
  });

  it('finds the first link, final or not, without following it', async () => {
    fs.symlinkSync('/etc', path.join(root, 'pods', 'p1', 'mount'));
    expect(await paths.findLink(path.join(root, 'pods', 'p1', 'mount'))).toEqual({ link: path.join(root, 'pods', 'p1', 'mount'), pointsTo: '/etc', final: true });
    fs.symlinkSync('p1', path.join(root, 'pods', 'p3'));
    expect(await paths.findLink(path.join(root, 'pods', 'p3', 'mount', 'x'))).toEqual({ link: path.join(root, 'pods', 'p3'), pointsTo: 'p1', final: false });
    await expect(paths.refuseLinks(path.join(root, 'pods', 'p3', 'mount'), 'target_path')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining(`goes through the symbolic link ${path.join(root, 'pods', 'p3')} (to p1)`),
    });
  });

  it('lets the kubelet directory itself be a link (distributions that move it)', async () => {
    const moved = path.join(dir, 'moved-kubelet');
    fs.symlinkSync(root, moved);
    const viaLink = new KubeletPaths(moved);
    await expect(viaLink.refuseLinks(path.join(moved, 'pods', 'p1', 'mount'), 'target_path')).resolves.toBeUndefined();
  });
});
