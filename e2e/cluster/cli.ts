// The test node by hand: `node dist/e2e/cluster/cli.js up` boots it and keeps it until Ctrl-C (it
// prints the admin kubeconfig to use with kubectl); `cleanup` removes whatever an earlier run left
// (run.sh's trap calls it); `leftovers` prints what of the harness is still on the machine and
// exits 1 when anything is.
import { cleanUpNode, findLeftovers } from './cleanup';
import { defaultClusterConfig } from './config';
import { bootNode } from './node';

async function main(command: string | undefined): Promise<number> {
  const config = defaultClusterConfig();
  switch (command) {
    case 'up': {
      const node = await bootNode({ config });
      process.stdout.write(`cluster: up; export KUBECONFIG=${node.kubeconfig}; Ctrl-C tears it down\n`);
      await new Promise<never>(() => undefined);
      return 0;
    }
    case 'cleanup':
      await cleanUpNode(config);
      return 0;
    case 'leftovers': {
      const leftovers = await findLeftovers(config);
      process.stdout.write(`${JSON.stringify(leftovers, null, 2)}\n`);
      return Object.values(leftovers).some((list: readonly string[]) => list.length > 0) ? 1 : 0;
    }
    default:
      process.stderr.write('usage: cli.js up|cleanup|leftovers\n');
      return 2;
  }
}

main(process.argv[2]).then((code) => process.exit(code), (error: Error) => {
  process.stderr.write(`cluster: ${error.message}\n`);
  process.exit(1);
});
