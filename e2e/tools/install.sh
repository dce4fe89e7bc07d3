#!/usr/bin/env bash
# Installs the pinned test tools (real S3-compatible server, csi-sanity, helm) with `go install`,
# builds the repository's own Go tools (kube-validate: "source" in versions.json, whose "version" is
# the Kubernetes release its go.mod pins), and installs the Python S3 client the tests run (boto3:
# "pypi" in versions.json, with every dependency pinned in "dependencies") with `pip install --target`.
# Tools are cached under $GRANARY_TOOLS_DIR (default ~/.cache/granary/tools), one folder per tool and
# version, so a second run on the same machine installs nothing; a tool built from source is rebuilt
# when its source changes, a PyPI tool is reinstalled when its pinned dependencies change. The
# default list also installs rclone (the other real S3 client of the tests) from Debian's packages
# when it is missing (debian-packages.sh, which bench/install.sh shares).
#
#   install.sh                 # the tools of e2e/tools/versions.json (npm test's)
#   install.sh VERSIONS.json   # another list of the same shape (e2e/cluster/versions.json: the node's)
#
# To move a PyPI tool to another release, pin the set pip resolves for it:
#   python3 -m pip install --dry-run --quiet --ignore-installed --target /tmp/x boto3==VERSION --report -
# ("install" lists each package's metadata.name and metadata.version).
#
# A source tool with a "package" is that package built inside the source folder's module (a wrapper
# module that pins a release); when the folder has a build.sh, it builds instead of a plain go build
# (`build.sh PACKAGE VERSION OUTPUT`, to stamp versions or set build flags the release uses).
set -euo pipefail

TOOLS_DIR="${GRANARY_TOOLS_DIR:-$HOME/.cache/granary/tools}"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VERSIONS="$(realpath "${1:-$HERE/versions.json}")"
# One line per tool, "name|go package|pinned version|source folder|pip requirements", from versions.json (the one
# place versions live); the requirements of a PyPI tool are "project==version" for it and each of its dependencies.
mapfile -t TOOLS < <(node -e '
  const v = require(process.argv[1]);
  for (const [name, t] of Object.entries(v)) {
    const pip = t.pypi ? [[t.pypi, t.version], ...Object.entries(t.dependencies ?? {})].map(([p, pv]) => `${p}==${pv}`).join(" ") : "";
    console.log([name, t.package ?? "", t.version, t.source ?? "", pip].join("|"));
  }
' "$VERSIONS")

need() { command -v "$1" >/dev/null 2>&1 || { echo "test tools: '$1' is required but not installed: $2" >&2; exit 1; }; }
need go "install Go (https://go.dev/doc/install); the test setup builds its pinned tools with 'go install'"
need mount "install util-linux (apt-get install util-linux); FUSE mounts are made with mount(8)"
[ -c /dev/fuse ] || { echo "test tools: /dev/fuse is missing; load the fuse module (modprobe fuse)" >&2; exit 1; }

# A digest of a source-built tool's files, kept beside the binary to notice a changed source.
source_digest() { (cd "$ROOT/$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }

# Installs a PyPI tool and its pinned dependencies into its folder: pure Python, run with PYTHONPATH set to the folder.
# pip writes a scratch folder that is renamed into place, so an interrupted install never looks installed.
pip_install() {
  local name="$1" version="$2" requirements="$3" dir="$4"
  need python3 "install Python 3 (apt-get install python3); the tests run the real $name S3 client with it"
  python3 -m pip --version >/dev/null 2>&1 \
    || { echo "test tools: pip is missing for $(command -v python3): install it (apt-get install python3-pip, or python3 -m ensurepip)" >&2; exit 1; }
  echo "test tools: installing $name $version (pip install --target $dir: ${requirements})"
  local started=$SECONDS scratch="$dir.partial"
  mkdir -p "$TOOLS_DIR"
  rm -rf "$scratch"
  # shellcheck disable=SC2086 # one word per requirement
  python3 -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore --no-warn-conflicts --only-binary=:all: --target "$scratch" $requirements
  echo "$requirements" > "$scratch/.requirements"
  rm -rf "$dir"
  mv "$scratch" "$dir"
  echo "test tools: installed $name in $((SECONDS - started)) s with $(python3 --version):"
  python3 -m pip list --disable-pip-version-check --path "$dir" --format=freeze | sed 's/^/  /'
}

for entry in "${TOOLS[@]}"; do
  IFS='|' read -r name pkg version source requirements <<<"$entry"
  dir="$TOOLS_DIR/$name-$version"
  if [ -n "$requirements" ]; then
    if [ "$(cat "$dir/.requirements" 2>/dev/null)" = "$requirements" ]; then
      echo "test tools: $name $version cached at $dir"
    else
      pip_install "$name" "$version" "$requirements" "$dir"
    fi
    continue
  fi
  if [ -n "$source" ]; then
    digest="$(source_digest "$source")"
    if [ -x "$dir/$name" ] && [ "$(cat "$dir/$name.source" 2>/dev/null)" = "$digest" ]; then
      echo "test tools: $name $version cached at $dir"
      continue
    fi
    echo "test tools: building $name from $source (go build, cached in $dir; first run only, takes a few minutes)"
    mkdir -p "$dir"
    started=$SECONDS
    # Builds run at a lower priority: they take minutes and the machine is shared with running tests.
    if [ -x "$ROOT/$source/build.sh" ]; then
      nice -n 10 "$ROOT/$source/build.sh" "$pkg" "$version" "$dir/$name"
    else
      (cd "$ROOT/$source" && nice -n 10 go build -o "$dir/$name" "${pkg:-.}")
    fi
    echo "$digest" > "$dir/$name.source"
    echo "test tools: built $name in $((SECONDS - started)) s"
    continue
  fi
  if [ -x "$dir/$name" ]; then
    echo "test tools: $name $version cached at $dir"
    continue
  fi
  echo "test tools: installing $name $version (go install $pkg@$version, cached in $dir; first run only, takes a few minutes)"
  mkdir -p "$dir"
  GOBIN="$dir" GOFLAGS="-mod=mod" go install "$pkg@$version"
done

# rclone, the tests' other real S3 client, is Debian's package (the bench mounts the same one); only the default list
# (npm test's) needs it.
if [ "$#" -eq 0 ]; then
  bash "$HERE/debian-packages.sh" "test tools" rclone
  echo "test tools: $(rclone version | head -n1)"
fi
