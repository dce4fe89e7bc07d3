// `granary csi`: parse flags, build the CsiConfig, serve the CSI driver until SIGTERM.
import { Command, Option } from 'commander';
import { CSI_MODES, MOUNTERS, parseCsiConfig, type CsiMode, type MounterKind } from '../config/csi';
import { LOG_LEVELS } from '../config/mount';
import { createLogger } from '../log/logger';
import { cacheEnabled } from '../config/cache';
import { readTokenFile } from '../cache/token';
import type { OptionFlags } from '../config/parse';
import { addCacheClientOptions, cacheClientFlags, cacheClientInput, type CacheClientFlags } from './cache-flags';
import { logFormatOption } from './log-flags';

interface CsiFlags extends CacheClientFlags {
  mode: CsiMode;
  endpoint: string;
  nodeId?: string;
  kubeletDir?: string;
  stateDir?: string;
  mountReadyTimeout?: string;
  maxVolumesPerNode?: string;
  mounter?: MounterKind;
  mountPodImage?: string;
  mountPodNamespace?: string;
  mountPodServiceAccount?: string;
  mountPodPriorityClass?: string;
  mountPodGracePeriod?: string;
  mountPodDir?: string;
  registerWithKubelet?: boolean;
  registrationDir?: string;
  kubeletRegistrationPath?: string;
  healthListen?: string;
  healthProbeTimeout?: string;
  metricsListen?: string;
  logLevel: (typeof LOG_LEVELS)[number];
}

function integer(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`${flag} takes a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** The flag of each option of `granary csi`, for the configuration's messages. */
const CSI_FLAGS: OptionFlags = {
  mode: '--mode',
  endpoint: '--endpoint',
  nodeId: '--node-id',
  kubeletDir: '--kubelet-dir',
  stateDir: '--state-dir',
  mountReadyTimeoutMs: '--mount-ready-timeout',
  maxVolumesPerNode: '--max-volumes-per-node',
  mounter: '--mounter',
  mountPodImage: '--mount-pod-image',
  mountPodNamespace: '--mount-pod-namespace',
  mountPodServiceAccount: '--mount-pod-service-account',
  mountPodPriorityClass: '--mount-pod-priority-class',
  mountPodGracePeriodSeconds: '--mount-pod-grace-period',
  mountPodDir: '--mount-pod-dir',
  registerWithKubelet: '--register-with-kubelet',
  registrationDir: '--registration-dir',
  kubeletRegistrationPath: '--kubelet-registration-path',
  healthListen: '--health-listen',
  healthProbeTimeoutMs: '--health-probe-timeout',
  metricsListen: '--metrics-listen',
  logLevel: '--log-level',
  ...cacheClientFlags(),
};

/** Adds `granary csi` to the program. */
export function register(program: Command): void {
  const command = program
    .command('csi')
    .description('Serve the CSI driver (csi.granary.dev) on a unix socket (or a TCP port, for tests) until SIGTERM/SIGINT. Logs on stderr (--log-format).')
    .addOption(new Option('--mode <mode>', 'services to serve').choices(CSI_MODES).makeOptionMandatory())
    .option('--endpoint <endpoint>', 'unix:///path/to/csi.sock or tcp://host:port', 'unix:///csi/csi.sock')
    .option('--node-id <name>', "this node's name (required in node and all modes)")
    .option('--kubelet-dir <dir>', "kubelet's root directory: staging and target paths must be below it (default: /var/lib/kubelet)")
    .option('--state-dir <dir>', 'where the node service keeps each volume\'s state: mount logs, session journals, metrics sockets (default: /var/lib/granary/mounts)')
    .option('--mount-ready-timeout <ms>', 'how long NodeStageVolume waits for a mount to be live (default: 30000)')
    .option('--max-volumes-per-node <n>', 'volumes this node accepts, 0 = no limit (default: 0)')
    .addOption(new Option('--mounter <kind>', "who runs each volume's granary mount: process (a child of this process, ends with it) or pod (a mount Pod per volume on this node, outlives it) (default: process)").choices(MOUNTERS))
    .option('--mount-pod-image <image>', "the mount Pods' image: this plugin's own (required with --mounter pod)")
    .option('--mount-pod-namespace <namespace>', 'where mount Pods and their Secrets are made (default: $POD_NAMESPACE)')
    .option('--mount-pod-service-account <name>', "the mount Pods' service account (default: the namespace's default)")
    .option('--mount-pod-priority-class <name>', "the mount Pods' priority class, '' for none (default: system-node-critical)")
    .option('--mount-pod-grace-period <seconds>', 'how long a deleted mount Pod has to flush and unmount (default: 30)')
    .option('--mount-pod-dir <dir>', "host directory of the mount Pods' mount points, a shared mount (default: <kubelet-dir>/plugins/csi.granary.dev/mounts)")
    .option('--register-with-kubelet', "register with the kubelet by serving its plugin-registration API (instead of the node-driver-registrar sidecar); node and all modes")
    .option('--registration-dir <dir>', 'the directory the kubelet watches for registration sockets; must exist (default: <kubelet-dir>/plugins_registry)')
    .option('--kubelet-registration-path <path>', "the CSI socket's path on the host, as the kubelet reaches it (default: <kubelet-dir>/plugins/csi.granary.dev/csi.sock)")
    .option('--health-listen <host:port>', 'serve GET /healthz there: 200 when the driver answers Probe, else 500 with the reason (default: off)')
    .option('--metrics-listen <host:port>', "serve GET /metrics there: the driver's metrics and, on a node, every mount's (label volume_id) (default: off)")
    .option('--health-probe-timeout <ms>', 'how long /healthz waits for the answer to Probe (default: 3000)')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .addOption(logFormatOption());
  // The node service hands these to every `granary mount` it starts (a StorageClass may turn the cache off).
  addCacheClientOptions(command).action(async (flags: CsiFlags) => {
    const config = parseCsiConfig({
      mode: flags.mode,
      endpoint: flags.endpoint,
      nodeId: flags.nodeId,
      kubeletDir: flags.kubeletDir,
      stateDir: flags.stateDir,
      mountReadyTimeoutMs: integer('--mount-ready-timeout', flags.mountReadyTimeout),
      maxVolumesPerNode: integer('--max-volumes-per-node', flags.maxVolumesPerNode),
      mounter: flags.mounter,
      mountPodImage: flags.mountPodImage,
      mountPodNamespace: flags.mountPodNamespace ?? process.env.POD_NAMESPACE,
      mountPodServiceAccount: flags.mountPodServiceAccount,
      mountPodPriorityClass: flags.mountPodPriorityClass,
      mountPodGracePeriodSeconds: integer('--mount-pod-grace-period', flags.mountPodGracePeriod),
      mountPodDir: flags.mountPodDir,
      registerWithKubelet: flags.registerWithKubelet,
      registrationDir: flags.registrationDir,
      kubeletRegistrationPath: flags.kubeletRegistrationPath,
      healthListen: flags.healthListen,
      healthProbeTimeoutMs: integer('--health-probe-timeout', flags.healthProbeTimeout),
      metricsListen: flags.metricsListen,
      logLevel: flags.logLevel,
      cache: cacheClientInput(flags),
    }, CSI_FLAGS);
    // Fail at start, not at the first NodeStageVolume, when the node's cache token cannot be read.
    if (config.mode !== 'controller' && config.cache.tokenFile && cacheEnabled(config.cache)) await readTokenFile(config.cache.tokenFile);
    const logger = createLogger({ level: config.logLevel, name: `granary-csi-${config.mode}` });
    const { buildCsiServices, startCsiPlugin } = await import('../csi/plugin');
    const plugin = await startCsiPlugin(config, buildCsiServices(config, logger), logger);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info({ signal }, `stopping the CSI driver; staged volumes keep their mount ${config.mounter === 'pod' ? 'Pods' : 'processes'}`);
        void plugin.stop().then(resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
  });
}
