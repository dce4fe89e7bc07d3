#!/usr/bin/env bash
# Installs everything the one-node test cluster (e2e/cluster) needs, cached, in one command:
#   - Debian packages (debian-packages.json): apt-get install when missing; the installed version is
#     checked against the pinned one. A different Debian revision of the same upstream version (a
#     security or point release) only warns; a different upstream version fails, since the node's
#     behaviour was checked on the pinned one. "*" pins nothing (build tools only).
#   - the Kubernetes binaries and csi-provisioner (versions.json), built from the Go module proxy by
#     e2e/tools/install.sh into ~/.cache/granary/tools, a second run builds nothing;
#   - the test tools of npm test (e2e/tools/versions.json), the same way: the cluster test runs the
#     S3 server (versitygw) and installs the chart with the pinned helm.
# Needs root (apt-get, and the node itself runs as root).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

[ "$(id -u)" = 0 ] || { echo "cluster tools: run as root (apt-get install, and the node runs as root)" >&2; exit 1; }

# "name|pinned version" per line.
mapfile -t PACKAGES < <(node -e '
  for (const [name, version] of Object.entries(require(process.argv[1]))) console.log(`${name}|${version}`);
' "$HERE/debian-packages.json")

installed_version() { dpkg-query -W -f '${db:Status-Abbrev}|${Version}' "$1" 2>/dev/null | sed -n 's/^ii *|//p'; }
# The upstream part of a Debian version: without the epoch ("1:") and the Debian revision ("-4+b1").
upstream() { local v="${1#*:}"; echo "${v%-*}"; }

missing=()
for entry in "${PACKAGES[@]}"; do
  name="${entry%%|*}"
  [ -n "$(installed_version "$name")" ] || missing+=("$name")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "cluster tools: installing Debian packages ${missing[*]}"
  apt-get update -qq
  # No service is started by the packages' scripts: the harness runs etcd and containerd itself.
  policy="/usr/sbin/policy-rc.d"
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

status=0
for entry in "${PACKAGES[@]}"; do
  IFS='|' read -r name pinned <<<"$entry"
  have="$(installed_version "$name")"
  if [ -z "$have" ]; then
    echo "cluster tools: Debian package $name did not install" >&2; status=1
  elif [ "$pinned" = "*" ] || [ "$have" = "$pinned" ]; then
    echo "cluster tools: $name $have"
  elif [ "$(upstream "$have")" = "$(upstream "$pinned")" ]; then
    echo "cluster tools: WARNING: $name is $have, pinned $pinned (same upstream version, another Debian revision)" >&2
  else
    echo "cluster tools: $name is $have but the node was checked with $pinned: install that version" \
      "(apt-get install $name=$pinned) or update e2e/cluster/debian-packages.json after checking the node on it" >&2
    status=1
  fi
done
[ "$status" = 0 ] || exit 1

bash "$HERE/../tools/install.sh"
bash "$HERE/../tools/install.sh" "$HERE/versions.json"
