// The container commands of the chart and the example manifests against the real command line:
// every granary container's args are parsed by the program src/cli/index.ts builds (actions
// replaced, so nothing runs), so a flag renamed or removed in src/ fails here, not in a cluster.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/index';
import { CHART_DIR, containers, exampleManifests, parseObjects, render, ROOT, valuesSets, type Container, type KubeObject } from './chart';

/** What one parse reached: the subcommand path (e.g. "cache serve") and its option values. */
interface Parsed {
  command: string;
  options: Record<string, unknown>;
}

/** Parses `args` as `granary ARGS` would, without running any action; throws commander's error when refused. */
async function parseCli(args: string[]): Promise<Parsed> {
  const program = buildProgram();
  let parsed: Parsed | undefined;
  const quiet = (command: Command, names: string[]): void => {
    command.exitOverride();
    command.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
    if (command.commands.length === 0) {
      command.action(() => {
        parsed = { command: names.join(' '), options: command.opts() };
      });
    }
    for (const sub of command.commands) quiet(sub, [...names, sub.name()]);
  };
  quiet(program, []);
  await program.parseAsync(args, { from: 'user' });
  if (!parsed) throw new Error(`granary ${args.join(' ')} reached no subcommand`);
  return parsed;
}

/** The args as the kubelet passes them: $(VAR) replaced by the container's env VAR; an undefined VAR is an error. */
function expandEnvironment(container: Container): string[] {
  const defined = new Set((container.env ?? []).map((variable) => variable.name));
  return (container.args ?? []).map((arg) =>
    arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_whole, name: string) => {
      if (!defined.has(name)) throw new Error(`container ${container.name} uses $(${name}) in its args but defines no such env variable`);
      return `value-of-${name}`;
    }),
  );
}

/** Commands a granary-image container may run instead of the granary entrypoint. */
const OTHER_COMMANDS = ['chown'];

function isGranaryImage(image: string): boolean {
  return /^(.*\/)?granary:[^/]+$/.test(image);
}

function sources(): Array<{ name: string; objects: KubeObject[] }> {
  return [
    ...valuesSets().map((set) => ({ name: set.name, objects: parseObjects(render(set.files)) })),
    ...exampleManifests().map((file) => ({ name: path.relative(ROOT, file), objects: parseObjects(fs.readFileSync(file, 'utf8')) })),
  ];
}

describe('the granary command line accepts the commands the chart and the examples run', () => {
  it('refuses a flag it does not know, a wrong choice and a missing mandatory flag (the check can fail)', async () => {
    await expect(parseCli(['csi', '--mode=node', '--node-id=n', '--no-such-flag'])).rejects.toThrow(/unknown option '--no-such-flag'/);
    await expect(parseCli(['csi', '--mode=sideways'])).rejects.toThrow(/Allowed choices are controller, node, all/);
    await expect(parseCli(['cache', 'serve', '--listen=0.0.0.0:7070'])).rejects.toThrow(/required option '--token-file <file>' not specified/);
    await expect(parseCli(['csi', '--mode=controller'])).resolves.toMatchObject({ command: 'csi', options: { mode: 'controller' } });
  });

  it('accepts every granary container of every render and example manifest, covering every role', async () => {
    const seen = new Set<string>();
    let checked = 0;
    for (const source of sources()) {
      for (const { owner, container } of containers(source.objects)) {
        if (!isGranaryImage(container.image)) continue;
        const where = `${source.name}: ${owner.kind}/${owner.metadata.name} container ${container.name}`;
        if (container.command) {
          expect({ where, command: container.command[0] }).toEqual({ where, command: expect.stringMatching(new RegExp(`^(${OTHER_COMMANDS.join('|')})$`)) });
          continue;
        }
        let parsed: Parsed;
        try {
          parsed = await parseCli(expandEnvironment(container));
        } catch (error) {
          throw new Error(`${where}: granary ${(container.args ?? []).join(' ')}: ${(error as Error).message}`, { cause: error });
        }
        seen.add(parsed.command === 'csi' ? `csi --mode=${String(parsed.options.mode)}` : parsed.command);
        checked++;
      }
    }
    expect([...seen].sort()).toEqual(['cache serve', 'csi --mode=controller', 'csi --mode=node', 'warmup']);
    expect(checked).toBeGreaterThan(10);
  });

  it('accepts the S3 gateway flags of the cache server, with region and virtual hosts', async () => {
    const objects = parseObjects(render([path.join(CHART_DIR, 'examples', 'on-prem-minio.yaml')], ['cache.s3Gateway.region=eu-west-1', 'cache.s3Gateway.virtualHostSuffixes={s3.example.com,s3.internal}']));
    const cache = containers(objects).find(({ owner, container }) => owner.metadata.name.endsWith('-cache') && container.name === 'granary')?.container;
    expect(cache?.args).toEqual(expect.arrayContaining(['--s3-listen=0.0.0.0:9000', '--s3-region=eu-west-1']));
    await expect(parseCli(expandEnvironment(cache!))).resolves.toMatchObject({
      command: 'cache serve',
      options: { s3Listen: '0.0.0.0:9000', s3KeysFile: '/etc/granary/s3-keys/keys.json', s3Region: 'eu-west-1', s3VirtualHost: ['s3.example.com', 's3.internal'] },
    });
  });

  it("is the image's entrypoint: the Dockerfile runs `granary`, linked to package.json's bin", () => {
    const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const packageJson = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(dockerfile).toMatch(/^ENTRYPOINT \["granary"\]$/m);
    const link = /ln -s \/opt\/granary\/(\S+) \/usr\/local\/bin\/granary/.exec(dockerfile);
    expect(link?.[1]).toBe(packageJson.bin.granary);
    expect(packageJson.bin.granary).toBe('dist/src/cli/index.js');
    expect(fs.existsSync(path.join(ROOT, 'src', 'cli', 'index.ts'))).toBe(true);
  });

  it("is executable after npm run build (npm test's build): npx runs the bin itself, and tsc writes it without the x bit", () => {
    const packageJson = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(packageJson.scripts.build).toContain(`chmod +x ${packageJson.bin.granary}`);
    expect(fs.statSync(path.join(ROOT, packageJson.bin.granary ?? '')).mode & 0o111).toBe(0o111);
  });
});
