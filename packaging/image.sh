#!/usr/bin/env bash
# Builds the container image without a Docker daemon or a registry:
#   1. the build context $CARGO_TARGET_DIR/image/context (default target/): rootfs/ with
#      the release binary, the shared libraries it links copied from this Debian host
#      (ldd), the CA bundle, /etc/passwd and /etc/group naming the user kinesis-tail
#      (65532), the default config (packaging/container-config.yaml), and state/, which
#      the Dockerfile copies to /var/lib/kinesis-tail owned by 65532;
#   2. `buildah bud --isolation chroot` of packaging/Dockerfile (FROM scratch) on that
#      context, into $CARGO_TARGET_DIR/image/kinesis-tail-<version>.oci.tar (an OCI
#      archive: `skopeo copy oci-archive:... docker://...` pushes it, `podman load -i`
#      loads it).
# Installs buildah (Debian) when it is missing.
#
# Usage: packaging/image.sh [--no-build] [--context-only]
#   --no-build      use the release binary already built
#   --context-only  stop after step 1 and print the context directory (for docker build)
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
context_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=0; shift ;;
        --context-only) context_only=1; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "image.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
bin="$target_dir/release/kinesis-tail"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
out="$target_dir/image"
context="$out/context"
rootfs="$context/rootfs"
uid=65532

if [ "$build" = 1 ]; then
    cargo build --release --locked --bin kinesis-tail
fi
[ -x "$bin" ] || { echo "image.sh: $bin is missing (build it, or drop --no-build)" >&2; exit 1; }

rm -rf "$context"
mkdir -p "$rootfs"/{usr/bin,etc/kinesis-tail,etc/ssl/certs,tmp} "$context/state"
install -m 0755 "$bin" "$rootfs/usr/bin/kinesis-tail"
strip "$rootfs/usr/bin/kinesis-tail" 2>/dev/null || true
# The libraries the binary links, at the paths its dynamic loader looks in.
libs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
[ -n "$libs" ] || { echo "image.sh: ldd found no libraries for $bin" >&2; exit 1; }
for lib in $libs; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done
ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || { echo "image.sh: $ca is missing (apt-get install ca-certificates)" >&2; exit 1; }
install -m 0644 "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"
install -m 0644 packaging/container-config.yaml "$rootfs/etc/kinesis-tail/config.yaml"
printf 'root:x:0:0:root:/root:/sbin/nologin\nkinesis-tail:x:%s:%s:kinesis-tail:/var/lib/kinesis-tail:/sbin/nologin\n' \
    "$uid" "$uid" >"$rootfs/etc/passwd"
printf 'root:x:0:\nkinesis-tail:x:%s:\n' "$uid" >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
chmod 0644 "$rootfs"/etc/{passwd,group,nsswitch.conf}
chmod 0750 "$context/state"
chmod 1777 "$rootfs/tmp"
cp packaging/Dockerfile "$context/Dockerfile"
if [ "$context_only" = 1 ]; then
    echo "$context"
    exit 0
fi

if ! command -v buildah >/dev/null 2>&1; then
    echo "== installing buildah"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq buildah >/dev/null
fi
# vfs storage: works on any file system, without fuse-overlayfs or a kernel overlay.
export STORAGE_DRIVER=vfs
tag="localhost/kinesis-tail:$version"
archive="$out/kinesis-tail-$version.oci.tar"
buildah --storage-driver vfs bud --isolation chroot --layers=false -q \
    -f "$context/Dockerfile" -t "$tag" "$context" >/dev/null
rm -f "$archive"
buildah --storage-driver vfs push -q "$tag" "oci-archive:$archive:$tag" >/dev/null
echo "$archive"
