#!/usr/bin/env bash
# The one test command (npm test): installs the pinned test tools (cached), type-checks and builds,
# lints, then runs every jest project (unit, then integration against the real S3 server, real FUSE
# mounts and csi-sanity), then the one-node Kubernetes cluster test (e2e/cluster/run.sh: the chart
# installed as the README says, real Pods through granary; its tools are built on the first run and
# cached). Arguments go to jest and select tests: `npm test -- PATTERN` runs those jest tests only,
# without the cluster.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== test tools"
if [ "$#" -eq 0 ]; then
  # The cluster's tools too (Kubernetes, containerd's packages, csi-provisioner): built once, before any test runs.
  bash e2e/cluster/install.sh
else
  bash e2e/tools/install.sh
fi
echo "== build (tsc)"
npm run --silent build
echo "== lint (eslint)"
npx eslint .
echo "== tests (jest)"
npx jest --ci "$@"
if [ "$#" -eq 0 ]; then
  echo "== cluster (npm run test:cluster)"
  bash e2e/cluster/run.sh
fi
