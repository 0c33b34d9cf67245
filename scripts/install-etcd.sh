#!/usr/bin/env bash
# Installs the bundled etcd versions into a bin dir laid out as in the image:
#   <bin-dir>/etcd-<x.y.z>, etcdctl-<x.y.z>, etcdutl-<x.y.z> (3.5+).
# Sources:
# - Debian's archive (versions/debian.tsv), through the mirror that this machine's apt
#   configuration names. Every package is checked against its sha256; downloads are cached.
# - etcd's published Go modules (versions/go/etcd-<x.y.z>/: a wrapper module with its go.sum),
#   for the versions Debian does not have: built with the pinned Go toolchain, CGO_ENABLED=0
#   -trimpath, as etcd's release builds are; Go's module and build caches make a rebuild quick.
# A bin dir that already holds a version's verified binaries is left alone; every binary's
# version is checked against its name.
#
# Usage: scripts/install-etcd.sh [bin-dir]     (default: .cache/etcd-bin, or $ETCD_BIN_DIR)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${1:-${ETCD_BIN_DIR:-$repo/.cache/etcd-bin}}
cache=${ETCD_DEB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/etcd-migrate/debs}
manifest=$repo/versions/debian.tsv

die() { echo "install-etcd: $*" >&2; exit 1; }

# The Debian mirror from apt's own configuration (deb822 .sources first, then sources.list).
mirror() {
  local uri=""
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; add one, or fill $cache with the .deb files listed in $manifest"
  echo "${uri%/}"
}

fetch() { # file sha256 -> path of a verified .deb in the cache
  local file=$1 sum=$2 path=$cache/$1
  if [ -f "$path" ] && echo "$sum  $path" | sha256sum -c --quiet - >/dev/null 2>&1; then
    echo "$path"; return
  fi
  local url
  url="$(mirror)/pool/main/e/etcd/$file"
  mkdir -p "$cache"
  curl -fsSL --retry 3 -o "$path.part" "$url" || die "download failed: $url"
  echo "$sum  $path.part" | sha256sum -c --quiet - >/dev/null 2>&1 || { rm -f "$path.part"; die "checksum mismatch for $file (expected $sum)"; }
  mv "$path.part" "$path"
  echo "$path"
}

mkdir -p "$bin_dir"
bin_dir=$(cd "$bin_dir" && pwd)
stamp_dir=$bin_dir/.installed
mkdir -p "$stamp_dir"
installed=()
while IFS=$'\t' read -r version file sum; do
  case "$version" in ''|\#*) continue ;; esac
  stamp=$stamp_dir/$file.sha256
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then continue; fi
  deb=$(fetch "$file" "$sum")
  tmp=$(mktemp -d)
  dpkg-deb -x "$deb" "$tmp"
  for tool in etcd etcdctl etcdutl; do
    if [ -f "$tmp/usr/bin/$tool" ]; then
      install -m 0755 "$tmp/usr/bin/$tool" "$bin_dir/$tool-$version.tmp"
      mv -f "$bin_dir/$tool-$version.tmp" "$bin_dir/$tool-$version"
    fi
  done
  rm -rf "$tmp"
  echo "$sum" > "$stamp"
  installed+=("$file")
done < "$manifest"

# The version a binary reports must be the one in its name.
check_version() { # tool version path
  local out
  if [ "$1" = etcd ]; then out=$("$3" --version 2>&1 | head -1 || true)
  else out=$(ETCDCTL_API=3 "$3" version 2>&1 | head -1 || true); fi
  case "$out" in
    *"ersion: $2") ;;
    *) die "$3 reports \"$out\", not version $2" ;;
  esac
}

go_toolchain=go1.26.8
for mod in "$repo"/versions/go/etcd-*/; do
  version=$(basename "$mod"); version=${version#etcd-}
  sum=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -d' ' -f1)
  stamp=$stamp_dir/go-$version.sha256
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && [ -x "$bin_dir/etcd-$version" ]; then continue; fi
  # Go's own install places it in /usr/local/go/bin, which a non-login shell may lack on its PATH.
  command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
  command -v go >/dev/null || die "etcd $version is built from Go modules, but go is not on the PATH; install Go ($go_toolchain or newer)"
  for m in server etcdctl etcdutl; do
    tool=$([ $m = server ] && echo etcd || echo $m)
    (cd "$mod" && GOTOOLCHAIN=$go_toolchain GOFLAGS=-mod=readonly CGO_ENABLED=0 \
      go build -trimpath -o "$bin_dir/$tool-$version.tmp" "go.etcd.io/etcd/$m/v3") || die "building $tool $version failed"
    check_version "$tool" "$version" "$bin_dir/$tool-$version.tmp"
    mv -f "$bin_dir/$tool-$version.tmp" "$bin_dir/$tool-$version"
  done
  echo "$sum" > "$stamp"
  installed+=("etcd-$version (Go modules)")
done

for f in "$bin_dir"/etcd-* "$bin_dir"/etcdctl-* "$bin_dir"/etcdutl-*; do
  [ -e "$f" ] || continue
  name=$(basename "$f"); check_version "${name%-*}" "${name##*-}" "$f"
done

if [ ${#installed[@]} -eq 0 ]; then
  echo "install-etcd: $bin_dir is up to date"
else
  echo "install-etcd: installed ${installed[*]} into $bin_dir"
fi
