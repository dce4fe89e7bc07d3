// The one-node cluster from real parts (npm run test:cluster): boots it with the project's own files,
// runs plain Pods that prove storage, in-cluster API access and the network fence, then tears it
// down and checks that nothing of it is left on the machine.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { cleanUpNode, findLeftovers } from './cleanup';
import { waitFor } from './daemon';
import { clusterToolVersion } from './config';
import { isSharedMount, mountsUnder } from './mounts';
import { hostAddress, refusedPackets } from './network';
import { type ClusterNode, bootNode } from './node';
import { POD_TIMEOUT_MS, runPod, startPod } from './pods';

const BOOT_TIMEOUT_MS = 40 * 60_000; // a first run builds the images (debootstrap, npm ci, tsc) on a busy machine
const TEST_TIMEOUT_MS = 5 * 60_000;
const KUBERNETES_VERSION = clusterToolVersion('kube-apiserver');

/** A TCP server answering every connection with a tiny HTTP response, counting who connected. */
async function listen(host: string): Promise<{ port: number; peers: string[]; close(): Promise<void> }> {
  const peers: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    peers.push(socket.remoteAddress ?? '?');
    sockets.add(socket.once('close', () => sockets.delete(socket)));
    socket.on('error', () => undefined);
    socket.end('HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello');
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    peers,
    // A peer in a pod's network namespace may vanish without closing: its socket is destroyed, not waited for.
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    }),
  };
}

/** Connects from the host and closes at once: the listener is reachable without the pod network. */
function probe(port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host, () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

describe('a one-node Kubernetes cluster from real parts', () => {
  let node: ClusterNode;
  const podStartSeconds: Record<string, number> = {};

  beforeAll(async () => {
    node = await bootNode();
  }, BOOT_TIMEOUT_MS);

  afterAll(async () => {
    await node?.stop();
    // The killed-run test boots a second node; whatever a failure there left goes too.
    if (node) await cleanUpNode(node.config);
    const report = { ...node?.timings, podStartSeconds };
    process.stdout.write(`cluster timings (s): ${JSON.stringify(report)}\n`);
    if (node) await fs.writeFile(path.join(node.dirs.logs, 'timings.json'), JSON.stringify(report, null, 2));
  }, TEST_TIMEOUT_MS);

  test(`the Node is Ready, runs kubelet ${KUBERNETES_VERSION}, and its root dir is a shared mount`, async () => {
    const nodeObject = JSON.parse((await node.kubectl(['get', 'node', node.config.nodeName, '-o', 'json'])).stdout) as {
      status: { nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string }; conditions: { type: string; status: string }[];
        addresses: { type: string; address: string }[] };
    };
    expect(nodeObject.status.conditions.find((condition) => condition.type === 'Ready')?.status).toBe('True');
    expect(nodeObject.status.nodeInfo.kubeletVersion).toBe(KUBERNETES_VERSION);
    expect(nodeObject.status.nodeInfo.containerRuntimeVersion).toMatch(/^containerd:\/\/1\.6\./);
    expect(nodeObject.status.addresses).toContainEqual({ type: 'InternalIP', address: node.config.nodeIp });
    expect(await isSharedMount(node.dirs.kubelet)).toBe(true);
  }, TEST_TIMEOUT_MS);

  test('a busybox Pod writes a file into an emptyDir that the host reads in the kubelet\'s pod dir, and exits 0', async () => {
    const token = randomBytes(8).toString('hex');
    const answer = randomBytes(8).toString('hex');
    // The Pod waits for the host's answer in the same emptyDir: the kubelet cleans a finished Pod's volumes.
    const pod = await startPod(node, 'empty-dir-writer', {
      image: node.images.busybox,
      command: ['sh', '-c', 'echo "$TOKEN" > /data/token && until [ -s /data/answer ]; do sleep 0.2; done && cat /data/answer'],
      env: [{ name: 'TOKEN', value: token }],
      volumeMounts: [{ name: 'data', mountPath: '/data' }],
    }, { volumes: [{ name: 'data', emptyDir: {} }] });
    const onHost = path.join(node.dirs.kubelet, 'pods', pod.uid, 'volumes', 'kubernetes.io~empty-dir', 'data');
    await waitFor('the Pod\'s file in its emptyDir', async () => (await fs.readFile(path.join(onHost, 'token'), 'utf8').catch(() => '')).trim() === token,
      POD_TIMEOUT_MS);
    await fs.writeFile(path.join(onHost, 'answer.tmp'), `${answer}\n`);
    await fs.rename(path.join(onHost, 'answer.tmp'), path.join(onHost, 'answer'));
    const result = await pod.finished();
    podStartSeconds.emptyDir = result.startSeconds;
    expect(result).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
    expect(result.logs.trim()).toBe(answer);
  }, TEST_TIMEOUT_MS);

  test(`a Pod reaches the API server through the kubernetes Service IP with its service-account token (${KUBERNETES_VERSION})`, async () => {
    // In the granary image, as granary's own components do: @kubernetes/client-node's in-cluster
    // config (the Service's env, the token, the CA of kube-root-ca.crt, so the serving certificate is
    // verified for the Service IP, which busybox wget --no-check-certificate would not do). Anonymous
    // requests are refused by this API server, so the version comes only with the token.
    const script = `
      const fs = require('node:fs');
      const https = require('node:https');
      const k8s = require('@kubernetes/client-node');
      const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
      const { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port } = process.env;
      console.log('host=' + host + ':' + port);
      const fail = (error) => { console.error(error); process.exit(1); };
      https.get({ host, port, path: '/version', ca: fs.readFileSync(sa + '/ca.crt') }, (response) => {
        console.log('anonymous=' + response.statusCode);
        response.resume();
        const config = new k8s.KubeConfig();
        config.loadFromCluster();
        config.makeApiClient(k8s.VersionApi).getCode().then((version) => console.log('version=' + version.gitVersion), fail);
      }).on('error', fail);`;
    const result = await runPod(node, 'api-client', { image: node.images.granary, command: ['node', '-e', script] });
    podStartSeconds.apiClient = result.startSeconds;
    expect(result).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
    expect(result.logs).toContain(`host=${node.config.apiServiceIp}:443`);
    expect(result.logs).toContain('anonymous=401');
    expect(result.logs).toContain(`version=${KUBERNETES_VERSION}`);
  }, TEST_TIMEOUT_MS);

  test('a Pod reaches the harness\'s own address but is refused an address of the host the harness did not make', async () => {
    const inside = await listen(node.config.nodeIp);
    const outsideAddress = await hostAddress();
    const outside = await listen(outsideAddress);
    try {
      // The host itself reaches the outside listener: only the fence can stop the Pod.
      await probe(outside.port, outsideAddress);
      const refusedBefore = await refusedPackets(node.config);
      const script = [
        // timeout, not wget -T: Debian's busybox-static 1.35 wget crashes (SIGSEGV) when given -T.
        `if timeout 20 wget -q -O - http://${node.config.nodeIp}:${inside.port}/; then echo " inside=reached"; else echo " inside=failed"; fi`,
        `if timeout 20 wget -q -O - http://${outsideAddress}:${outside.port}/; then echo " outside=reached"; else echo " outside=refused"; fi`,
      ].join('\n');
      const result = await runPod(node, 'fenced', { image: node.images.busybox, command: ['sh', '-c', script] });
      expect({ phase: result.phase, logs: result.logs }).toEqual({ phase: 'Succeeded', logs: expect.stringContaining('hello inside=reached') });
      expect(result.logs).toContain('outside=refused');
      expect(inside.peers.every((peer) => peer.startsWith(node.config.podCidr.replace(/\.0\/\d+$/, '.')))).toBe(true);
      expect(inside.peers).toHaveLength(1);
      expect(outside.peers.filter((peer) => peer !== outsideAddress)).toEqual([]);
      expect(await refusedPackets(node.config)).toBeGreaterThan(refusedBefore);
    } finally {
      await inside.close();
      await outside.close();
    }
  }, TEST_TIMEOUT_MS);

  test('a privileged Pod\'s Bidirectional mount under the kubelet dir appears on the host (what the FUSE node plugin needs)', async () => {
    const shared = path.join(node.dirs.kubelet, 'propagation-test');
    const pod = await startPod(node, 'bidirectional', {
      image: node.images.busybox,
      command: ['sh', '-c', 'mkdir -p /host/mnt && mount -t tmpfs tmpfs /host/mnt && echo from-pod > /host/mnt/file && ' +
        'until [ -e /host/mnt/done ]; do sleep 0.2; done && umount /host/mnt'],
      securityContext: { privileged: true },
      volumeMounts: [{ name: 'kubelet-dir', mountPath: '/host', mountPropagation: 'Bidirectional' }],
    }, { volumes: [{ name: 'kubelet-dir', hostPath: { path: shared, type: 'DirectoryOrCreate' } }] });
    await waitFor('the Pod\'s tmpfs on the host', async () => (await mountsUnder(path.join(shared, 'mnt'))).length > 0, POD_TIMEOUT_MS);
    expect(await fs.readFile(path.join(shared, 'mnt', 'file'), 'utf8')).toBe('from-pod\n');
    await fs.writeFile(path.join(shared, 'mnt', 'done'), '');
    expect(await pod.finished()).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
    expect(await mountsUnder(path.join(shared, 'mnt'))).toEqual([]);
  }, TEST_TIMEOUT_MS);

  test('the granary image runs its entrypoint (granary --help), and csi-provisioner\'s image reports its release', async () => {
    const granary = await runPod(node, 'granary-help', { image: node.images.granary });
    expect(granary).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
    expect(granary.logs).toContain('Usage: granary');
    const provisioner = await runPod(node, 'csi-provisioner-version', { image: node.images.csiProvisioner, args: ['--version'] });
    expect(provisioner).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
    expect(provisioner.logs).toContain(clusterToolVersion('csi-provisioner'));
  }, TEST_TIMEOUT_MS);

  test('a second boot or a cleanup while the node runs is refused, and the node keeps running', async () => {
    await expect(bootNode()).rejects.toThrow(`the test node is in use by process ${process.pid}`);
    const cli = path.join(__dirname, '..', '..', 'dist', 'e2e', 'cluster', 'cli.js');
    const cleanup = spawnSync(process.execPath, [cli, 'cleanup'], { encoding: 'utf8' });
    expect({ status: cleanup.status, stderr: cleanup.stderr }).toEqual({ status: 1, stderr: expect.stringContaining(`in use by process ${process.pid}`) });
    const { stdout } = await node.kubectl(['get', 'node', node.config.nodeName, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
    expect(stdout).toBe('True');
    expect((await findLeftovers(node.config)).links.some((link) => link.includes(` ${node.config.bridge}:`))).toBe(true);
  }, TEST_TIMEOUT_MS);

  test('the teardown leaves no process, mount, interface, iptables rule or cgroup of the harness', async () => {
    await node.stop();
    expect(await findLeftovers(node.config)).toEqual({ processes: [], mounts: [], links: [], iptablesRules: [], cgroups: [], files: [] });
  }, TEST_TIMEOUT_MS);

  test('a run killed outright (no teardown) leaves its parts behind, and the cleanup of the next run removes them all', async () => {
    // The CLI boots the same node in a child process, which is then SIGKILLed: no finally, no trap.
    const cli = path.join(__dirname, '..', '..', 'dist', 'e2e', 'cluster', 'cli.js');
    const child = spawn(process.execPath, [cli, 'up'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await waitFor('the CLI\'s node to be up', async () => output.includes('cluster: up;'), BOOT_TIMEOUT_MS);
    await node.kubectl(['run', 'left-running', '--image', node.images.busybox, '--image-pull-policy', 'Never', '--', 'sleep', '3600']);
    await waitFor('a Pod running on the node', async () =>
      (await node.kubectl(['get', 'pod', 'left-running', '-o', 'jsonpath={.status.phase}'])).stdout === 'Running', POD_TIMEOUT_MS);
    child.kill('SIGKILL');
    await exited;
    const left = await findLeftovers(node.config);
    expect(left.processes.length).toBeGreaterThan(0);
    expect(left.mounts.length).toBeGreaterThan(0);
    expect(left.links.length).toBeGreaterThan(0);
    expect(left.iptablesRules.length).toBeGreaterThan(0);
    expect(left.cgroups.length).toBeGreaterThan(0);
    expect(left.files.length).toBeGreaterThan(0);
    await cleanUpNode(node.config);
    expect(await findLeftovers(node.config)).toEqual({ processes: [], mounts: [], links: [], iptablesRules: [], cgroups: [], files: [] });
  }, BOOT_TIMEOUT_MS);
});
