import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { builtCli } from '../support/built-cli';
import { stopProcess } from '../support/process';
import { createBucket, testS3 } from '../support/s3-server';
import { toolPath } from '../support/tools';

/**
 * Why csi-sanity skips what it skips: each is a capability granary does not advertise, on purpose.
 * A skip for any reason not listed here fails the test, so a capability that silently disappears
 * (or a new csi-sanity section) is noticed.
 */
const JUSTIFIED_SKIPS: Record<string, string> = {
  'ListSnapshots not supported': 'no snapshots: a volume is a prefix in a plain bucket; users snapshot with their store\'s versioning or replication',
  'CreateSnapshot not supported': 'no snapshots (see ListSnapshots)',
  'DeleteSnapshot not supported': 'no snapshots (see ListSnapshots)',
  'Snapshot not supported': 'no snapshots (see ListSnapshots)',
  'Volume Cloning not supported': 'no cloning yet: a clone would be a server-side copy of every object under the prefix',
  'ControllerPublishVolume not supported': 'nothing to attach: any node reaches the bucket (CSIDriver attachRequired: false)',
  'ControllerUnpublishVolume not supported': 'nothing to attach (see ControllerPublishVolume)',
  'Controller Publish, UnpublishVolume not supported': 'nothing to attach (see ControllerPublishVolume)',
  'ControllerModifyVolume not supported': 'no mutable volume parameters (VolumeAttributesClass) yet',
  'Modify volume not supported': 'no mutable volume parameters (see ControllerModifyVolume)',
  'Modify Volume not supported': 'no mutable volume parameters (see ControllerModifyVolume)',
  'GroupControllerService not supported': 'no volume group snapshots (no snapshots at all)',
  'ListVolumes not supported': 'volumes live in buckets named by StorageClasses the controller does not know; listing every bucket would need list rights on all of them',
  'GetCapacity not supported': 'an object store has no capacity to report',
  'ControllerExpandVolume not supported': 'an object store prefix has no size to expand',
  'NodeExpandVolume not supported': 'an object store prefix has no size to expand',
  'GetSnapshot not supported': 'no snapshots (see ListSnapshots)',
  'ControllerGetVolumeHealth not supported': 'no VOLUME_CONDITION capability yet (alpha in Kubernetes): a dead mount shows as an error of NodeGetVolumeStats and in the mount log',
  'ControllerListVolumeHealth not supported': 'no volume health (see ControllerGetVolumeHealth)',
  'NodeGetVolumeHealth not supported': 'no volume health (see ControllerGetVolumeHealth)',
  'NodeGetStorageHealth not supported': 'no storage health: the object store is the storage, and its health is the store\'s own',
  'Service does not have single node multi writer capability': 'no SINGLE_NODE_MULTI_WRITER capability (ReadWriteOncePod) yet: volumes are shared across nodes',
};

/** Specs granary must pass: the whole provisioning and mount life cycle, not just argument checks. */
const REQUIRED_PASSES = [
  'Node Service should work',
  'Node Service should be idempotent',
  'Controller Service [Controller Server] CreateVolume should not fail when requesting to create a volume with already existing name and same capacity',
  'Controller Service [Controller Server] CreateVolume should fail when requesting to create a volume with already existing name and different capacity',
  'Controller Service [Controller Server] DeleteVolume should succeed when an invalid volume id is used',
  'Controller Service [Controller Server] ValidateVolumeCapabilities should fail when the requested volume does not exist',
  'Node Service NodeGetVolumeStats should fail when volume does not exist on the specified path',
];

/** One csi-sanity spec and how it ended, from the JUnit report. */
interface SpecResult {
  name: string;
  status: string;
  skipReason?: string;
}

function parseJunit(xml: string): SpecResult[] {
  const results: SpecResult[] = [];
  for (const match of xml.matchAll(/<testcase name="(.*?)"[^>]*status="(\w+)"[^>]*>([\s\S]*?)<\/testcase>/g)) {
    const name = (match[1] ?? '').replace(/^\[It\] /, '').replaceAll('&#34;', '"').replaceAll('&#39;', "'");
    const skip = /<skipped message="skipped - ([^"]*)"/.exec(match[3] ?? '');
    results.push({ name, status: match[2] ?? '', ...(skip ? { skipReason: skip[1] } : {}) });
  }
  return results;
}

/** The counts csi-sanity (ginkgo) prints in its closing line. */
interface SanityCounts {
  passed: number;
  failed: number;
  pending: number;
  skipped: number;
}

function parseCounts(output: string): SanityCounts | undefined {
  const match = /(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped/.exec(output);
  if (!match) return undefined;
  const [, passed, failed, pending, skipped] = match.map(Number);
  return { passed: passed ?? 0, failed: failed ?? 0, pending: pending ?? 0, skipped: skipped ?? 0 };
}

async function waitForSocket(socketPath: string, driver: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (driver.exitCode !== null) throw new Error(`granary csi exited with ${driver.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`granary csi did not listen on ${socketPath}: ${log()}`);
}

function fuseMountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mountPoint) => mountPoint.startsWith(dir));
}

describe('csi-sanity against granary csi --mode all (real FUSE mounts, real S3 server)', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-sanity-'));
  const socket = path.join(work, 'csi.sock');
  let driver: ChildProcess;
  let driverLog = '';

  beforeAll(async () => {
    const s3 = testS3();
    const bucket = await createBucket(s3, 'sanity');
    const render = (file: string) =>
      fs
        .readFileSync(path.join(__dirname, file), 'utf8')
        .replaceAll('${BUCKET}', bucket)
        .replaceAll('${ACCESS_KEY_ID}', s3.accessKeyId)
        .replaceAll('${SECRET_ACCESS_KEY}', s3.secretAccessKey)
        .replaceAll('${ENDPOINT}', s3.endpoint)
        .replaceAll('${REGION}', s3.region);
    fs.writeFileSync(path.join(work, 'parameters.yaml'), render('parameters.yaml'));
    fs.writeFileSync(path.join(work, 'secrets.yaml'), render('secrets.yaml'), { mode: 0o600 });

    // The driver gets no AWS credentials of its own: everything must flow through CSI secrets.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    driver = spawn(
      process.execPath,
      // csi-sanity's staging and target directories are under `work`, as kubelet's are under its root directory.
      [builtCli(), 'csi', '--mode', 'all', '--endpoint', `unix://${socket}`, '--node-id', 'sanity-node', '--kubelet-dir', work, '--state-dir', path.join(work, 'state')],
      { env: { ...env, GRANARY_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    driver.stderr?.on('data', (chunk: Buffer) => { driverLog = (driverLog + chunk.toString()).slice(-200_000); });
    await waitForSocket(socket, driver, () => driverLog.slice(-4000));
  });

  afterAll(async () => {
    if (driver) await stopProcess(driver, 10_000);
    for (const mountPoint of fuseMountsUnder(work).reverse()) spawnSync('umount', ['-l', mountPoint]);
    fs.writeFileSync(path.join(os.tmpdir(), 'granary-sanity-driver.log'), driverLog);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('passes with zero failures, every skip justified, the life-cycle specs passed', () => {
    const junitFile = path.join(work, 'junit.xml');
    const result = spawnSync(
      toolPath('csi-sanity'),
      [
        `-csi.endpoint=unix://${socket}`,
        `-csi.stagingdir=${path.join(work, 'staging')}`,
        `-csi.mountdir=${path.join(work, 'target')}`,
        `-csi.testvolumeparameters=${path.join(work, 'parameters.yaml')}`,
        `-csi.secrets=${path.join(work, 'secrets.yaml')}`,
        `-csi.junitfile=${junitFile}`,
        '-ginkgo.no-color',
        '-ginkgo.v',
      ],
      { encoding: 'utf8', timeout: 15 * 60_000, maxBuffer: 64 * 1024 * 1024 },
    );
    const output = `${result.stdout}\n${result.stderr}`;
    fs.writeFileSync(path.join(os.tmpdir(), 'granary-sanity.log'), output);
    const counts = parseCounts(output);
    // The counts go to the test log so a run can be quoted; the full log is in $TMPDIR/granary-sanity.log.
    console.log(`csi-sanity: ${JSON.stringify(counts)} (exit ${result.status})`);
    if (!counts || counts.failed > 0 || result.status !== 0) {
      const failures = output.split('\n').filter((line) => /\[FAIL\]|Expected|rpc error/.test(line)).slice(0, 60).join('\n');
      throw new Error(`csi-sanity failed (exit ${result.status}, counts ${JSON.stringify(counts)}):\n${failures}\n--- driver log tail ---\n${driverLog.slice(-3000)}`);
    }
    expect(counts.failed).toBe(0);
    const specs = parseJunit(fs.readFileSync(junitFile, 'utf8'));
    fs.copyFileSync(junitFile, path.join(os.tmpdir(), 'granary-sanity-junit.xml'));
    expect(specs.filter((spec) => spec.status === 'failed')).toEqual([]);
    const unjustified = specs.filter((spec) => spec.status === 'skipped' && !(spec.skipReason && spec.skipReason in JUSTIFIED_SKIPS));
    expect(unjustified).toEqual([]);
    const passed = new Set(specs.filter((spec) => spec.status === 'passed').map((spec) => spec.name));
    expect(REQUIRED_PASSES.filter((name) => !passed.has(name))).toEqual([]);
    // Nothing staged or published may be left behind.
    expect(fuseMountsUnder(work)).toEqual([]);
  }, 20 * 60_000);
});
