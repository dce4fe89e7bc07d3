#!/usr/bin/env bash
# The one test command (npm test): installs the pinned test tools (cached), type-checks and builds,
# lints, then runs every jest project (unit, then integration against the real S3 server, real FUSE
# mounts and csi-sanity).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== test tools"
bash e2e/tools/install.sh
echo "== build (tsc)"
npx tsc -p tsconfig.json
echo "== lint (eslint)"
npx eslint .
echo "== tests (jest)"
npx jest --ci "$@"
