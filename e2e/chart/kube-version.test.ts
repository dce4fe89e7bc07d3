// The Kubernetes version the chart renders for: `helm template charts/granary` as typed (helm then
// claims v1.20.0) renders for a current cluster; a cluster or --kube-version older than 1.26 fails the
// render, naming its version, and the admission policy still asks for 1.30.
import { toolPath } from '../support/tools';
import { KUBE_VERSION, parseObjects, run, type KubeObject } from './chart';

// Real processes (node, helm) start slowly on a loaded machine: no test here may fail on jest's 5 s default.
jest.setTimeout(60_000);

/** `helm template charts/granary ARGS`, run from the repository's root as a reader of the README would. */
function helmTemplateAsTyped(...args: string[]): ReturnType<typeof run> {
  return run(toolPath('helm'), ['template', 'charts/granary', ...args]);
}

function kindsAndNames(objects: KubeObject[]): string[] {
  return objects.map((object) => `${object.kind}/${object.metadata.name}`).sort();
}

describe('the Kubernetes version of a render', () => {
  it('renders `helm template charts/granary` with no flags, as for a current cluster (admission policy included)', () => {
    const plain = helmTemplateAsTyped();
    expect({ status: plain.status, stderr: plain.stderr }).toEqual({ status: 0, stderr: '' });
    const objects = parseObjects(plain.stdout);
    expect(objects.map((object) => object.kind)).toContain('ValidatingAdmissionPolicy');
    const pinned = helmTemplateAsTyped('--kube-version', KUBE_VERSION);
    expect(pinned.status).toBe(0);
    expect(kindsAndNames(objects)).toEqual(kindsAndNames(parseObjects(pinned.stdout)));
  });

  it.each([
    ['1.25.9', 'v1.25.9'],
    ['1.20.1', 'v1.20.1'],
    ['v1.25.3-eks-0a21954', 'v1.25.3'],
  ])('refuses Kubernetes %s, naming it (as helm reads it, %s) and the minimum', (version, named) => {
    for (const extra of [[], ['--set', 'node.mountPods.admissionPolicy=false']]) {
      const old = helmTemplateAsTyped('--kube-version', version, ...extra);
      expect(old.status).not.toBe(0);
      expect(old.stderr).toContain(`granary needs Kubernetes 1.26 or later, and the cluster runs ${named}: upgrade it first`);
    }
  });

  it('renders for Kubernetes 1.26 to 1.29 without the admission policy, and asks to turn it off otherwise', () => {
    for (const version of ['1.26.0', 'v1.29.3-gke.1093000']) {
      const withoutPolicy = helmTemplateAsTyped('--kube-version', version, '--set', 'node.mountPods.admissionPolicy=false');
      expect({ version, status: withoutPolicy.status }).toEqual({ version, status: 0 });
      const withPolicy = helmTemplateAsTyped('--kube-version', version);
      expect(withPolicy.stderr).toContain('node.mountPods.admissionPolicy needs Kubernetes 1.30 or later');
    }
  });
});
