#!/usr/bin/env bash
# Makes the local base image for an offline build: an image holding only the C runtime that Node
# and the Debian-packaged etcd binaries link against (glibc >= 2.34, libstdc++, libgcc_s), copied
# from this machine, plus /etc/passwd, /etc/group, /etc/nsswitch.conf and /tmp. It stands in for
# gcr.io/distroless/cc-debian12, the base of an online build, which holds the same libraries.
#
# Usage: image/base.sh <image-name> <binary>...     (prints the image name; podman is configured by the caller)
# The tag is a hash of the content, so an unchanged base is not imported again.
set -euo pipefail
name=${1:?usage: image/base.sh <image-name> <binary>...}; shift
[ $# -gt 0 ] || { echo "base.sh: name the binaries whose libraries the base must hold" >&2; exit 2; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/lib/x86_64-linux-gnu" "$root/usr/lib64" "$root/etc" "$root/tmp" "$root/usr/local/bin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp"

# Every shared library the binaries load, at the path the loader looks for it.
libs=$(for b in "$@"; do
  # A static binary (the Go module builds) has none: ldd fails on it, which is fine.
  { ldd "$b" 2>/dev/null || true; } | awk '/=>/ && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
done | sort -u)
[ -n "$libs" ] || { echo "base.sh: ldd found no library for $*" >&2; exit 1; }
for lib in $libs; do
  case "$lib" in
    /lib64/*|/usr/lib64/*) dest=$root/usr/lib64/$(basename "$lib") ;;
    *) dest=$root/usr/lib/x86_64-linux-gnu/$(basename "$lib") ;;
  esac
  cp -L "$lib" "$dest"
done

printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$root/etc/nsswitch.conf"
mkdir -p "$root/root" && chmod 700 "$root/root"

# A reproducible tar: fixed owner, times and order, so the same content gives the same tag.
tarball=$root.tar
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$tarball" .
trap 'rm -rf "$root" "$tarball"' EXIT
tag=$(sha256sum "$tarball" | cut -c1-12)
if ! podman image exists "$name:$tag"; then
  podman import --quiet "$tarball" "$name:$tag" >/dev/null
fi
echo "$name:$tag"
