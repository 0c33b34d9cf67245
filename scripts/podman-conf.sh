#!/usr/bin/env bash
# Writes the podman configuration this repo builds and runs images with, into a directory of its
# own (default .cache/podman), and prints the two variables that point podman at it:
#   eval "$(bash scripts/podman-conf.sh)"
# - runc as the OCI runtime (Debian's podman; crun is not installed here),
# - the host network namespace by default (no bridge networking in this sandbox),
# - ulimits that etcd and Node need (nofile from `ulimit -Hn`, nproc at most 32768),
# - no registry at all: no search registries, the common ones blocked. Every command also passes
#   --pull=never; nothing here may pull.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${PODMAN_CONF_DIR:-$repo/.cache/podman}
mkdir -p "$dir"

nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi

cat > "$dir/containers.conf.next" <<CONF
# Written by scripts/podman-conf.sh; do not edit (it is rewritten).
[containers]
netns = "host"
default_ulimits = [
  "nofile=$nofile:$nofile",
  "nproc=$nproc:$nproc",
]

[engine]
runtime = "runc"
CONF
mv "$dir/containers.conf.next" "$dir/containers.conf"

{
  echo '# Written by scripts/podman-conf.sh: no registry is searched, and the common ones are blocked.'
  echo 'unqualified-search-registries = []'
  for r in docker.io quay.io gcr.io ghcr.io registry.k8s.io k8s.gcr.io registry.fedoraproject.org registry.access.redhat.com registry.redhat.io public.ecr.aws mcr.microsoft.com; do
    printf '\n[[registry]]\nprefix = "%s"\nlocation = "%s"\nblocked = true\n' "$r" "$r"
  done
} > "$dir/registries.conf.next"
mv "$dir/registries.conf.next" "$dir/registries.conf"

echo "export CONTAINERS_CONF=$dir/containers.conf CONTAINERS_REGISTRIES_CONF=$dir/registries.conf"
