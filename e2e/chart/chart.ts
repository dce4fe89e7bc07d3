import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { toolPath } from '../support/tools';

/** The repository's root folder. */
export const ROOT = path.join(__dirname, '..', '..');

/** The chart's folder. */
export const CHART_DIR = path.join(ROOT, 'charts', 'granary');

/** Release and namespace every render uses (the same as manifests/granary.yaml). */
export const RELEASE = { name: 'granary', namespace: 'granary' } as const;

/** The Kubernetes version renders and lint assume, named rather than left to helm's default (v1.20.0, read by the chart as "a current cluster"). */
export const KUBE_VERSION = '1.34.0';

/** One rendered Kubernetes object, as loosely typed as YAML gives it. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/** A container of a pod template, with the fields the checks read. */
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string }>;
}

/** The values a render used: the chart's defaults, or an example values file. */
export interface ValuesSet {
  name: string;
  /** helm -f files (none for the defaults). */
  files: string[];
}

/** The default values and every example values file under charts/granary/examples/. */
export function valuesSets(): ValuesSet[] {
  const examples = fs
    .readdirSync(path.join(CHART_DIR, 'examples'))
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .map((file) => ({ name: `examples/${file}`, files: [path.join(CHART_DIR, 'examples', file)] }));
  return [{ name: 'default values', files: [] }, ...examples];
}

/** The outcome of running a tool. */
export interface ToolRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `file args` synchronously and returns its exit status and output. */
export function run(file: string, args: string[], input?: string): ToolRun {
  const result = spawnSync(file, args, { cwd: ROOT, encoding: 'utf8', input, maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `helm template` of the chart (or a changed copy of it in `chartDir`) with the given values files and --set pairs. */
export function helmTemplate(files: string[], set: string[] = [], chartDir = CHART_DIR): ToolRun {
  return run(toolPath('helm'), [
    'template', RELEASE.name, chartDir,
    '--namespace', RELEASE.namespace,
    '--kube-version', KUBE_VERSION,
    ...files.flatMap((file) => ['-f', file]),
    ...set.flatMap((pair) => ['--set', pair]),
  ]);
}

/** Renders the chart and throws with helm's message when it fails. */
export function render(files: string[], set: string[] = []): string {
  const result = helmTemplate(files, set);
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return result.stdout;
}

/** The objects of a multi-document YAML text, skipping empty documents. */
export function parseObjects(text: string): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) throw new Error(`invalid YAML: ${document.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = document.toJS();
    if (value !== null && value !== undefined) objects.push(value as KubeObject);
  }
  return objects;
}

/** Runs kube-validate (API-server validation, offline) on files; resolves to its report. */
export function kubeValidate(files: string[], namespace = 'default'): ToolRun {
  return run(toolPath('kube-validate'), ['-namespace', namespace, ...files]);
}

/** One render to validate: values files and --set pairs, named for its file. */
export interface NamedRender {
  name: string;
  files: string[];
  set: string[];
}

/** Renders each of `renders` into a file of a temporary folder and runs kube-validate on them all (the folder removed after). */
export function kubeValidateRenders(renders: NamedRender[]): ToolRun {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-renders-'));
  try {
    const files = renders.map((rendered) => {
      const file = path.join(dir, `${rendered.name}.yaml`);
      fs.writeFileSync(file, render(rendered.files, rendered.set));
      return file;
    });
    return kubeValidate(files, RELEASE.namespace);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The pod spec of a workload (Deployment, DaemonSet, Job, Pod), or undefined for other kinds. */
export function podSpec(object: KubeObject): { containers: Container[]; initContainers?: Container[] } | undefined {
  const spec = object.spec as { template?: { spec?: unknown } } | undefined;
  if (object.kind === 'Pod') return object.spec as { containers: Container[] };
  return spec?.template?.spec as { containers: Container[]; initContainers?: Container[] } | undefined;
}

/** Every container and init container of every workload in `objects`, with the object it belongs to. */
export function containers(objects: KubeObject[]): Array<{ owner: KubeObject; container: Container }> {
  return objects.flatMap((owner) => {
    const spec = podSpec(owner);
    if (!spec) return [];
    return [...(spec.initContainers ?? []), ...spec.containers].map((container) => ({ owner, container }));
  });
}

/** The YAML files of manifests/examples/. */
export function exampleManifests(): string[] {
  const dir = path.join(ROOT, 'manifests', 'examples');
  return fs.readdirSync(dir).filter((file) => file.endsWith('.yaml')).sort().map((file) => path.join(dir, file));
}

/**
 * Renders templates/NOTES.txt as `helm install` would print it. `helm template` skips NOTES.txt, so a
 * copy of the chart wraps it in a ConfigMap and the text is read back from there; `set` holds --set pairs.
 */
export function renderNotes(files: string[], workDir: string, set: readonly string[] = []): string {
  const copy = fs.mkdtempSync(path.join(workDir, 'notes-'));
  fs.cpSync(CHART_DIR, copy, { recursive: true });
  const notes = fs.readFileSync(path.join(copy, 'templates', 'NOTES.txt'), 'utf8');
  fs.rmSync(path.join(copy, 'templates', 'NOTES.txt'));
  fs.writeFileSync(path.join(copy, 'templates', '_notes.tpl'), `{{- define "notes-under-test" -}}\n${notes}{{- end }}\n`);
  fs.writeFileSync(
    path.join(copy, 'templates', 'notes-under-test.yaml'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-under-test\ndata:\n  notes: {{ include "notes-under-test" . | toJson }}\n',
  );
  const result = run(toolPath('helm'), [
    'template', RELEASE.name, copy, '--namespace', RELEASE.namespace, '--kube-version', KUBE_VERSION,
    '--show-only', 'templates/notes-under-test.yaml', ...files.flatMap((file) => ['-f', file]), ...set.flatMap((pair) => ['--set', pair]),
  ]);
  if (result.status !== 0) throw new Error(`rendering NOTES.txt failed: ${result.stderr}`);
  const [configMap] = parseObjects(result.stdout);
  return (configMap as unknown as { data: { notes: string } }).data.notes;
}
