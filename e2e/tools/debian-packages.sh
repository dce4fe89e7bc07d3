#!/usr/bin/env bash
# Installs, with apt-get (through sudo when not root), the Debian packages that provide the commands missing from
# PATH. A command already on PATH is left alone however it got there, so a second run installs nothing; a machine
# without apt-get is told what to install.
#
#   debian-packages.sh WHO COMMAND[=PACKAGE]...    # WHO starts each message; PACKAGE defaults to COMMAND
#   debian-packages.sh "bench tools" rclone s3fs fusermount3=fuse3
set -euo pipefail
who="$1"
shift

commands=()
packages=()
for wanted in "$@"; do
  command="${wanted%%=*}"
  command -v "$command" >/dev/null 2>&1 && continue
  commands+=("$command")
  packages+=("${wanted#*=}")
done
[ "${#packages[@]}" -eq 0 ] && exit 0

command -v apt-get >/dev/null 2>&1 || { echo "$who: install ${packages[*]} with your package manager (no apt-get here)" >&2; exit 1; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "$who: installing ${packages[*]} (apt-get)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}"
for command in "${commands[@]}"; do
  command -v "$command" >/dev/null 2>&1 || { echo "$who: '$command' is still not on PATH after apt-get install ${packages[*]}" >&2; exit 1; }
done
