#!/usr/bin/env bash
# Builds csi-provisioner the way the release's Makefile (release-tools/build.make) does: static, with
# its version stamped into main.version (it logs it at start).
#   build.sh PACKAGE VERSION OUTPUT
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
package="$1" version="$2" output="$3"
CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$version -s -w" -o "$output" "$package"
