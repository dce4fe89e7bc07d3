import * as fs from 'node:fs/promises';
import type { ClusterConfig } from './config';
import { run, succeeds } from './exec';
import type { ServiceRoute } from './services';

/** The harness's iptables chains: one that refuses pod traffic to foreign addresses, one for the Service DNAT. */
export function chainNames(config: ClusterConfig): { readonly filter: string; readonly nat: string } {
  return { filter: `${config.iptablesName}-EGRESS`, nat: `${config.iptablesName}-SERVICES` };
}

const iptables = (table: string, args: readonly string[]): Promise<unknown> => run('iptables', ['-w', '5', '-t', table, ...args]);
const prefixLength = (cidr: string): string => cidr.split('/')[1]!;

/**
 * Creates the pod network: the bridge (with the node's address, IPv6 off so it holds no other), and
 * the iptables rules, inserted first in their chains so nothing before them can accept:
 *   - filter INPUT and FORWARD: anything entering from the bridge to an address outside the pod
 *     network (the host's own addresses included) is rejected (REJECT, so a pod is told at once);
 *   - nat PREROUTING and OUTPUT: the `kubernetes` Service's ClusterIP:443 is DNAT-ed to the API
 *     server on the node's address (there is no kube-proxy), for pods and for host-network pods.
 * Every rule carries the harness's comment, which is how teardown finds it.
 */
export async function setUpNetwork(config: ClusterConfig): Promise<void> {
  const { filter, nat } = chainNames(config);
  const comment = ['-m', 'comment', '--comment', config.iptablesName];
  await run('ip', ['link', 'add', 'name', config.bridge, 'type', 'bridge']);
  await fs.writeFile(`/proc/sys/net/ipv6/conf/${config.bridge}/disable_ipv6`, '1');
  await run('ip', ['addr', 'add', `${config.nodeIp}/${prefixLength(config.podCidr)}`, 'dev', config.bridge]);
  await run('ip', ['link', 'set', config.bridge, 'up']);

  await iptables('filter', ['-N', filter]);
  await iptables('filter', ['-A', filter, '-d', config.podCidr, ...comment, '-j', 'RETURN']);
  await iptables('filter', ['-A', filter, '-p', 'tcp', ...comment, '-j', 'REJECT', '--reject-with', 'tcp-reset']);
  await iptables('filter', ['-A', filter, ...comment, '-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited']);
  for (const chain of ['INPUT', 'FORWARD']) await iptables('filter', ['-I', chain, '1', '-i', config.bridge, ...comment, '-j', filter]);

  await iptables('nat', ['-N', nat]);
  await iptables('nat', ['-A', nat, '-d', `${config.apiServiceIp}/32`, '-p', 'tcp', '--dport', '443', ...comment,
    '-j', 'DNAT', '--to-destination', `${config.nodeIp}:${config.apiServerPort}`]);
  await iptables('nat', ['-I', 'PREROUTING', '1', '-i', config.bridge, '-d', config.serviceCidr, ...comment, '-j', nat]);
  await iptables('nat', ['-I', 'OUTPUT', '1', '-d', config.serviceCidr, ...comment, '-j', nat]);
}

/** Where br_netfilter says whether bridged IPv4 traffic passes through iptables (and conntrack). */
const BRIDGE_NF_CALL_IPTABLES = '/proc/sys/net/bridge/bridge-nf-call-iptables';

/**
 * Routes a Service's port to pods in place of kube-proxy (iptables mode), in the harness's nat chain: ClusterIP:port
 * is DNAT-ed to one of the endpoints, each as likely (statistic random, as kube-proxy does), replacing the rules an
 * earlier call made for it. A pod's packet to the ClusterIP goes to the host, its gateway; DNAT-ed to another pod, it
 * is routed back onto the bridge, so forwarding is switched on for the bridge alone (not ip_forward: what other
 * interfaces receive is not forwarded, and the egress chain refuses whatever leaves the bridge for an address
 * outside the pod network; the setting goes with the bridge). The answer goes from pod to pod across the bridge and
 * is un-DNAT-ed only because br_netfilter passes bridged traffic through conntrack, as kube-proxy requires too.
 */
export async function routeService(config: ClusterConfig, route: ServiceRoute): Promise<void> {
  if ((await fs.readFile(BRIDGE_NF_CALL_IPTABLES, 'utf8').catch(() => 'missing')).trim() !== '1') {
    throw new Error(`routing Service ${route.clusterIp}:${route.port} to pods needs bridged traffic to pass through iptables ` +
      `(${BRIDGE_NF_CALL_IPTABLES} is not 1): 'modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1', as for kube-proxy`);
  }
  await fs.writeFile(`/proc/sys/net/ipv4/conf/${config.bridge}/forwarding`, '1');
  const { nat } = chainNames(config);
  const match = ['-d', `${route.clusterIp}/32`, '-p', 'tcp', '-m', 'tcp', '--dport', String(route.port)];
  const { stdout } = await run('iptables', ['-w', '5', '-t', 'nat', '-S', nat]);
  for (const rule of stdout.split('\n').filter((line) => line.startsWith(`-A ${nat} ${match.join(' ')} `))) {
    await iptables('nat', ['-D', ...rule.split(' ').slice(1).map((word) => word.replace(/^"|"$/g, ''))]);
  }
  for (const [index, endpoint] of route.endpoints.entries()) {
    const left = route.endpoints.length - index;
    const pick = left > 1 ? ['-m', 'statistic', '--mode', 'random', '--probability', (1 / left).toFixed(5)] : [];
    await iptables('nat', ['-A', nat, ...match, ...pick, '-m', 'comment', '--comment', config.iptablesName,
      '-j', 'DNAT', '--to-destination', `${endpoint.address}:${endpoint.port}`]);
  }
}

/** The packets the egress chain has refused so far (its REJECT rules' counters). */
export async function refusedPackets(config: ClusterConfig): Promise<number> {
  const { stdout } = await run('iptables', ['-w', '5', '-t', 'filter', '-L', chainNames(config).filter, '-v', '-x', '-n']);
  return stdout.split('\n').filter((line) => line.includes('REJECT')).reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0]), 0);
}

/** The lines of iptables-save that are the harness's: its chains, and rules that jump to them or carry its comment. */
export async function ownIptablesRules(config: ClusterConfig): Promise<string[]> {
  const { stdout } = await run('iptables-save', []);
  return stdout.split('\n').filter((line) => line.includes(config.iptablesName));
}

/**
 * Removes the harness's rules and chains (found by name and comment), its pod sandboxes' network
 * namespaces left by a killed containerd (under its state dir), and the bridge. Each step is
 * best-effort and idempotent: it runs after a failed or interrupted run too.
 */
export async function tearDownNetwork(config: ClusterConfig): Promise<void> {
  const { filter, nat } = chainNames(config);
  for (const [table, chains, own] of [['filter', ['INPUT', 'FORWARD'], filter], ['nat', ['PREROUTING', 'OUTPUT'], nat]] as const) {
    const { stdout } = await run('iptables', ['-w', '5', '-t', table, '-S']);
    for (const rule of stdout.split('\n')) {
      const words = rule.split(' ');
      if (words[0] === '-A' && chains.includes(words[1] as never) && (rule.includes(config.iptablesName))) {
        // iptables -S prints the rule as it was added; -D takes the same words (quotes around the comment dropped).
        await iptables(table, ['-D', ...words.slice(1).map((word) => word.replace(/^"|"$/g, ''))]);
      }
    }
    if (await succeeds('iptables', ['-w', '5', '-t', table, '-S', own])) {
      await iptables(table, ['-F', own]);
      await iptables(table, ['-X', own]);
    }
  }
  if (await succeeds('ip', ['link', 'show', config.bridge])) {
    // A pod's veth dies with its network namespace; one still here belongs to a sandbox torn down late.
    const { stdout } = await run('ip', ['-o', 'link', 'show', 'master', config.bridge]);
    for (const line of stdout.split('\n').filter((l) => l.trim() !== '')) {
      const name = line.split(':')[1]!.trim().split('@')[0]!;
      await succeeds('ip', ['link', 'delete', name]);
    }
    await run('ip', ['link', 'delete', config.bridge]);
  }
}

/** The address the host's default route leaves from: a host address the harness did not make. */
export async function hostAddress(): Promise<string> {
  const { stdout } = await run('ip', ['-4', '-o', 'route', 'get', '1.1.1.1']);
  const match = / src (\S+)/.exec(stdout);
  if (!match) throw new Error(`cannot find the host's own address in 'ip route get': ${stdout}`);
  return match[1]!;
}
