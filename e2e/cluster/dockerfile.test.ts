// The test cluster's granary image is built by replaying the Dockerfile (e2e/cluster/images), not from
// a second copy of its recipe. These checks run in npm test, in milliseconds: the builder reads the real
// Dockerfile into the plan it replays, and refuses what it could not reproduce, so the two cannot drift.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDockerfile } from './images/dockerfile';
import pins from './images/images.json';
import { planImage } from './images/recipe';

const DOCKERFILE = fs.readFileSync(path.join(__dirname, '..', '..', 'Dockerfile'), 'utf8');
const PINS = { nodeVersion: pins.node.version };
const runtimeStage = (): ReturnType<typeof parseDockerfile>[number] => parseDockerfile(DOCKERFILE).at(-1)!;
/** The last value the runtime stage gives an instruction, read straight from the parsed Dockerfile. */
const last = (keyword: string): string | undefined =>
  runtimeStage().instructions.filter((instruction) => instruction.keyword === keyword).at(-1)?.raw;

describe('the cluster image builder replays the Dockerfile', () => {
  test('the Dockerfile\'s base Node major is the builder\'s pinned Node major, on the Dockerfile\'s Debian release', () => {
    const plan = planImage(DOCKERFILE, PINS);
    const from = /^node:(\d+)-(\w+)-slim$/.exec(runtimeStage().from);
    expect(from).not.toBeNull();
    expect(plan.base.nodeMajor).toBe(Number(from![1]));
    expect(Number(pins.node.version.split('.')[0])).toBe(plan.base.nodeMajor);
    expect(plan.base.suite).toBe(from![2]);
    expect(plan.buildStage.base).toEqual(plan.base);
  });

  test('the image config is the runtime stage\'s user, entrypoint, cmd, workdir and env', () => {
    const { config } = planImage(DOCKERFILE, PINS);
    expect(config.user).toBe(last('USER'));
    expect(config.entrypoint).toEqual(JSON.parse(last('ENTRYPOINT')!));
    expect(config.cmd).toEqual(JSON.parse(last('CMD')!));
    expect(config.workdir).toBe(last('WORKDIR'));
    for (const env of runtimeStage().instructions.filter((instruction) => instruction.keyword === 'ENV')) {
      const [key, value] = env.raw.split('=');
      expect(config.env[key!]).toBe(value);
    }
  });

  test('the base packages the runtime stage installs are what the replayed RUN installs', () => {
    const plan = planImage(DOCKERFILE, PINS);
    const install = runtimeStage().instructions.find((instruction) => /apt-get install/.test(instruction.raw))!;
    expect(plan.runtimeSteps).toContainEqual(expect.objectContaining({ kind: 'run', command: install.raw }));
    const named = install.raw.slice(install.raw.indexOf('apt-get install')).split('&&')[0]!.split(/\s+/).slice(2).filter((word) => word !== '' && !word.startsWith('-'));
    expect(plan.runtimePackages).toEqual(named);
    expect(plan.runtimePackages.length).toBeGreaterThan(0);
  });

  test('every COPY --from of the runtime stage and the symlink RUN are replayed, in order', () => {
    const plan = planImage(DOCKERFILE, PINS);
    const copies = runtimeStage().instructions.filter((instruction) => instruction.keyword === 'COPY');
    expect(plan.runtimeSteps.filter((step) => step.kind === 'copy-from-build').map((step) => `${step.source} ${step.destination}`))
      .toEqual(copies.map((copy) => copy.raw));
    const runs = runtimeStage().instructions.filter((instruction) => instruction.keyword === 'RUN').map((instruction) => instruction.raw);
    expect(plan.runtimeSteps.filter((step) => step.kind === 'run').map((step) => step.kind === 'run' && step.command)).toEqual(runs);
  });

  // The guards: a Dockerfile the builder could not reproduce fails here, in npm test, not in the cluster.
  test.each([
    ['another Node major', (text: string) => text.replace(/node:22-/g, 'node:24-'), /Node 24 but the image builder pins Node 22/],
    ['another base image', (text: string) => text.replace(/FROM node:22-bookworm-slim$/m, 'FROM gcr.io/distroless/nodejs22'), /node:MAJOR-SUITE-slim/],
    ['an instruction it does not replay', (text: string) => text.replace('ENTRYPOINT', 'HEALTHCHECK CMD ["granary"]\nENTRYPOINT'), /HEALTHCHECK.*cannot replay/],
    ['COPY --chown', (text: string) => text.replace('COPY --from=build /src/proto', 'COPY --from=build --chown=65532 /src/proto'), /no other flags/],
    ['a build-stage command other than npm/npx', (text: string) => text.replace('RUN npm ci --ignore-scripts', 'RUN apt-get install -y git && npm ci'), /only be npm or npx/],
    ['ENTRYPOINT in shell form', (text: string) => text.replace('ENTRYPOINT ["granary"]', 'ENTRYPOINT granary'), /exec \(JSON\) form/],
  ])('refuses a Dockerfile with %s', (_what, change, message) => {
    const changed = change(DOCKERFILE);
    expect(changed).not.toBe(DOCKERFILE);
    expect(() => planImage(changed, PINS)).toThrow(message);
  });

  test('follows a changed user, workdir and env rather than keeping its own', () => {
    const changed = DOCKERFILE.replace('USER 65532:65532', 'USER 1234:1234').replace('ENV NODE_ENV=production', 'ENV NODE_ENV=staging EXTRA=1')
      .replace('WORKDIR /opt/granary', 'WORKDIR /srv/granary');
    const { config } = planImage(changed, PINS);
    expect(config).toMatchObject({ user: '1234:1234', workdir: '/srv/granary', env: expect.objectContaining({ NODE_ENV: 'staging', EXTRA: '1' }) });
  });
});
