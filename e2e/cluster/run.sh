#!/usr/bin/env bash
# npm run test:cluster: the one-node Kubernetes cluster test. Installs its tools (cached: Debian
# packages, the Kubernetes binaries, csi-provisioner and npm test's tools built once), builds the
# project, boots the node, runs e2e/cluster/*.cluster.ts and tears the node down. Needs root,
# /dev/fuse, a few GiB of disk; leaves nothing behind: the trap removes an interrupted run's
# processes, mounts, bridge, iptables rules and cgroups too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash e2e/cluster/install.sh
npm run --silent build
trap 'node dist/e2e/cluster/cli.js cleanup' EXIT
# jest itself, not through npx: a kill of the test process then reaches the process that owns the node.
node node_modules/jest/bin/jest.js -c e2e/cluster/jest.config.js --runInBand "$@"
