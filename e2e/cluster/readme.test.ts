// The README's install, read the way the cluster test reads it (e2e/cluster/readme.ts), checked offline in
// npm test: its values render with the chart and name the buckets its own examples use, so a user who
// copies the README gets volumes the examples can read.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { helmInstallArgs, localExample, readmeInstall, storageClassesOf } from './readme';

const ROOT = path.join(__dirname, '..', '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const example = (file: string): string => fs.readFileSync(path.join(ROOT, 'manifests', 'examples', file), 'utf8');
/** The fields of the examples' objects this test reads. */
interface ExampleObject {
  kind: string;
  spec: { storageClassName?: string; csi?: { volumeHandle: string }; template?: { spec: { containers: { args: string[] }[] } } };
}
const objectsOf = (text: string): ExampleObject[] => parseAllDocuments(text).map((document) => document.toJS() as ExampleObject);

describe('the README\'s install', () => {
  test('is a values file and the helm install of charts/granary into namespace granary with it and two credentials', () => {
    const install = readmeInstall(README);
    expect(install.valuesFile).toBe('my-values.yaml');
    expect(install.helmInstall).toEqual(['helm', 'install', 'granary', 'charts/granary', '--namespace', 'granary', '--create-namespace',
      '-f', 'my-values.yaml', '--set', 'secrets.accessKeyID=AKIA...', '--set', 'secrets.secretAccessKey=...']);
  });

  test('its command gets the test\'s chart path, values files and credentials, and nothing else changes', () => {
    const args = helmInstallArgs(readmeInstall(README), {
      chartDir: '/repo/charts/granary',
      valuesPath: '/tmp/my-values.yaml',
      extraValuesPaths: ['/tmp/this-node.yaml'],
      set: { 'secrets.accessKeyID': 'id', 'secrets.secretAccessKey': 'secret' },
    });
    expect(args).toEqual(['install', 'granary', '/repo/charts/granary', '--namespace', 'granary', '--create-namespace',
      '-f', '/tmp/my-values.yaml', '-f', '/tmp/this-node.yaml', '--set', 'secrets.accessKeyID=id', '--set', 'secrets.secretAccessKey=secret']);
    expect(() => helmInstallArgs(readmeInstall(README), { chartDir: 'c', valuesPath: 'v', extraValuesPaths: [], set: {} }))
      .toThrow('sets secrets.accessKeyID, which the test has no value for');
  });

  test('its values name the bucket and StorageClass its examples use (training PVC, inference PV, warm-up source)', () => {
    const classes = storageClassesOf(readmeInstall(README).values);
    const training = objectsOf(example('training-job.yaml')).find((object) => object.kind === 'PersistentVolumeClaim')!;
    const trainingClass = classes.find((storageClass) => storageClass.name === training.spec.storageClassName);
    expect(trainingClass).toBeDefined();
    const volume = objectsOf(example('inference-deployment.yaml')).find((object) => object.kind === 'PersistentVolume')!;
    expect(volume.spec.csi!.volumeHandle.split('/')[0]).toBe(trainingClass!.bucket);
    const warmup = objectsOf(example('warmup-job.yaml')).find((object) => object.kind === 'Job')!;
    expect(new URL(warmup.spec.template!.spec.containers[0]!.args[1]!).host).toBe(trainingClass!.bucket);
  });

  test('an example keeps everything but its image names, and an image the node lacks is refused', () => {
    const images = { 'busybox:1.36': 'local/busybox:1', 'granary:0.1.0': 'local/granary:dev' };
    for (const file of ['training-job.yaml', 'warmup-job.yaml', 'inference-deployment.yaml']) {
      const original = example(file);
      const local = localExample(original, images);
      expect(local).not.toMatch(/image: (busybox:1\.36|granary:0\.1\.0)$/m);
      const lines = (text: string) => text.split('\n').filter((line) => !/^\s*(- )?image:/.test(line));
      expect(lines(local)).toEqual(lines(original));
    }
    expect(() => localExample('image: nginx:1\n', images)).toThrow('the example names image nginx:1, which this node does not have');
  });
});
