#!/usr/bin/env bash
# Builds one Kubernetes binary of this module's tools the way the release's own hack/lib/golang.sh
# does (static, -trimpath, -s -w, tags selinux,notest,grpcnotrace) and stamps the release's version
# into it, so `kubectl version` and the API server's /version say v1.34.4, not v0.0.0 (helm's
# kubeVersion checks read it).
#   build.sh PACKAGE VERSION OUTPUT      e.g. build.sh k8s.io/kubernetes/cmd/kubelet v1.34.4 /tmp/kubelet
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
package="$1" version="$2" output="$3"

[[ "$version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || { echo "kube-bins: '$version' is not a release version vMAJOR.MINOR.PATCH" >&2; exit 1; }
major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}"
# The release's tag time as the module proxy records it: a build date that does not change per build.
build_date="$(go mod download -json "k8s.io/kubernetes@$version" | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const info = require("node:fs").readFileSync(JSON.parse(s).Info, "utf8");
    console.log(JSON.parse(info).Time);
  });')"

ldflags=()
stamp() { ldflags+=("-X" "k8s.io/client-go/pkg/version.$1=$2" "-X" "k8s.io/component-base/version.$1=$2"); }
stamp gitVersion "$version"
stamp gitMajor "$major"
stamp gitMinor "$minor"
stamp gitTreeState clean
stamp buildDate "$build_date"

CGO_ENABLED=0 go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "all=${ldflags[*]} -s -w" -o "$output" "$package"
