#!/usr/bin/env bash
# Installs what the bench's rclone side needs: rclone and fuse3 (fusermount3), from Debian's packages.
# A second run installs nothing.
set -euo pipefail

missing=()
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
if [ "${#missing[@]}" -eq 0 ]; then
  echo "bench tools: rclone and fusermount3 present ($(rclone version | head -n1))"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || { echo "bench tools: install ${missing[*]} with your package manager (no apt-get here)" >&2; exit 1; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "bench tools: installing ${missing[*]} (apt-get)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
