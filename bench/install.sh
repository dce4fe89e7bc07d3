#!/usr/bin/env bash
# Installs what the bench's mount sides need from Debian's packages: rclone, s3fs and fuse3 (fusermount3).
# A second run installs nothing. JuiceFS, geesefs and Mountpoint for S3 are not packaged: their sides run
# when the binary is on PATH and otherwise show "not installed" (no recipe for them here, by design).
set -euo pipefail

bash "$(dirname "${BASH_SOURCE[0]}")/../e2e/tools/debian-packages.sh" "bench tools" rclone s3fs fusermount3=fuse3
echo "bench tools: rclone, s3fs and fusermount3 present ($(rclone version | head -n1), $(s3fs --version 2>&1 | head -n1))"
