#!/usr/bin/env bash
# Installs what the bench's mount sides need from Debian's packages: rclone, s3fs and fuse3 (fusermount3).
# A second run installs nothing. JuiceFS, geesefs and Mountpoint for S3 are not packaged: their sides run
# when the binary is on PATH and otherwise show "not installed" (no recipe for them here, by design).
set -euo pipefail

missing=()
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
command -v s3fs >/dev/null 2>&1 || missing+=(s3fs)
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
if [ "${#missing[@]}" -eq 0 ]; then
  echo "bench tools: rclone, s3fs and fusermount3 present ($(rclone version | head -n1), $(s3fs --version 2>&1 | head -n1))"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || { echo "bench tools: install ${missing[*]} with your package manager (no apt-get here)" >&2; exit 1; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "bench tools: installing ${missing[*]} (apt-get)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
