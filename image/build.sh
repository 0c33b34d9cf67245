#!/usr/bin/env bash
# Builds the image (make image). Lays out .cache/image/ for the build context, then runs
# podman build with --pull=never; nothing is ever pulled.
#
#   ETCD_SOURCE=local (default): offline, with --network=none: the etcd binaries of ETCD_BIN_DIR
#       (make etcd-bin: Debian's builds, dynamically linked) and a base image made from this
#       machine's C runtime by image/base.sh.
#   ETCD_SOURCE=release: the official tarballs of versions/releases.tsv, downloaded and checked in
#       the build, on BASE_IMAGE (default distroless cc-debian12); needs those images locally.
#
# Environment: IMAGE (default localhost/etcd-migrate:dev), ETCD_VERSIONS (x.y or x.y.z; default
# "3.3 3.4 3.5.30 3.5 3.6 3.7" for local: the oldest is there for etcd2 data, 3.5.30 for the example
# manifests; for release, the Dockerfile's
# ARG ETCD_VERSIONS, "3.4 3.5 3.6 3.7"),
# ETCD_BIN_DIR (default .cache/etcd-bin), BASE_IMAGE.
# Prints the image ID last; also written to .cache/image/iid.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
die() { echo "image/build.sh: $*" >&2; exit 1; }

image=${IMAGE:-localhost/etcd-migrate:dev}
source=${ETCD_SOURCE:-local}
bin_dir=${ETCD_BIN_DIR:-$repo/.cache/etcd-bin}
stage=.cache/image
node_bin=node_modules/node/bin/node

command -v podman >/dev/null || die "podman is not installed; as root: apt-get install podman runc"
[ -x "$node_bin" ] && [ -d node_modules/esbuild ] || die "$node_bin or esbuild is missing; run npm ci (make deps)"
eval "$(bash scripts/podman-conf.sh)"
mkdir -p "$stage"
t0=$(date +%s.%N)

# Node 24: the binary of the npm package `node` pinned in package.json, without its debug info (-18 MB).
if [ ! -f "$stage/node" ] || [ "$node_bin" -nt "$stage/node" ]; then
  if command -v strip >/dev/null; then strip -o "$stage/node.next" "$node_bin"; else cp "$node_bin" "$stage/node.next"; fi
  mv "$stage/node.next" "$stage/node"
fi

# The entrypoint as it ships: the esbuild bundle of src/ and its production dependencies, built
# here (not in dist/, which tests may be running at this moment), with the V8 compile cache of its
# pod start path (compile-cache/: portable, so made here by the same Node and used at /app).
"$repo/node_modules/.bin/node" scripts/build.mjs "$stage/app" --compile-cache

args=(--pull=never -f image/Dockerfile -t "$image" --iidfile "$stage/iid" --build-arg "ETCD_SOURCE=$source")
case "$source" in
  local)
    versions=${ETCD_VERSIONS:-3.3 3.4 3.5.30 3.5 3.6 3.7}
    [ -d "$bin_dir" ] || die "$bin_dir does not exist; run make etcd-bin or set ETCD_BIN_DIR"
    # shellcheck disable=SC2086
    "$repo/node_modules/.bin/node" image/etcd-bundle.ts local "$bin_dir" "$stage/etcd-bin" $versions
    base=${BASE_IMAGE:-$(bash image/base.sh localhost/etcd-migrate-base "$stage/node" "$stage"/etcd-bin/*-[0-9]*)}
    echo "$base" > "$stage/base"
    args+=(--network=none --build-arg "BASE_IMAGE=$base")
    ;;
  release)
    [ -n "${ETCD_VERSIONS:-}" ] && args+=(--build-arg "ETCD_VERSIONS=$ETCD_VERSIONS")
    [ -n "${BASE_IMAGE:-}" ] && args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
    ;;
  *) die "ETCD_SOURCE must be local or release, not $source" ;;
esac

podman build "${args[@]}" . >&2
id=$(cat "$stage/iid")
size=$(podman image inspect --format '{{.Size}}' "$id")
t1=$(date +%s.%N)
printf 'image/build.sh: %s (%s) built in %.1f s, %s MB\n' "$image" "${id#sha256:}" "$(echo "$t1 - $t0" | bc)" "$((size / 1000000))" >&2
echo "$id"
