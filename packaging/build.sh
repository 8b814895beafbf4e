#!/usr/bin/env bash
# Builds the release binary and the .deb and .rpm packages from it:
#   $CARGO_TARGET_DIR/packages/kinesis-tail_<version>-<revision>_amd64.deb   (cargo-deb)
#   $CARGO_TARGET_DIR/packages/kinesis-tail-<version>-<release>.x86_64.rpm  (cargo-generate-rpm)
# ($CARGO_TARGET_DIR defaults to target/.) Installs cargo-deb and cargo-generate-rpm with
# `cargo install --locked` when they are missing.
#
# Usage: packaging/build.sh [--profile NAME] [--no-build]
#   --profile NAME  cargo profile of the packaged binary (default: release). It must be
#                   an optimised one: the packages are what users run.
#   --no-build      package the binary already built for that profile
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="${2:?--profile needs a name}"; shift 2 ;;
        --profile=*) profile="${1#--profile=}"; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$profile" in
    dev|debug|test) echo "build.sh: --profile $profile is not optimised; packages need release" >&2; exit 2 ;;
esac

target_dir="${CARGO_TARGET_DIR:-target}"
out_dir="$target_dir/packages"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"

# Versions known to work; `cargo install` skips a tool already at that version.
CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1
install_tool() { # subcommand crate version
    if ! cargo "$1" --version >/dev/null 2>&1; then
        echo "== installing $2 $3"
        cargo install "$2" --version "$3" --locked
    fi
}
install_tool deb cargo-deb "$CARGO_DEB_VERSION"
install_tool generate-rpm cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"

if [ "$build" = 1 ]; then
    echo "== cargo build --profile $profile --locked"
    cargo build --profile "$profile" --locked --bin kinesis-tail
fi
binary="$target_dir/$profile/kinesis-tail"
[ -x "$binary" ] || { echo "build.sh: no binary at $binary (build it, or drop --no-build)" >&2; exit 1; }

mkdir -p "$out_dir"
deb="$out_dir/kinesis-tail_${version}-1_amd64.deb"
rpm="$out_dir/kinesis-tail-${version}-1.x86_64.rpm"
rm -f "$deb" "$rpm"

# Both packages get a stripped binary: the release profile keeps line tables (useful in
# development), which would make it 19 MB instead of 4.
echo "== cargo deb"
cargo deb --no-build --strip --profile "$profile" --output "$deb"
# cargo-generate-rpm does not strip; give it a stripped copy through --target-dir, which
# it uses only to resolve the asset target/release/kinesis-tail.
stage="$out_dir/rpm-stage"
rm -rf "$stage"
mkdir -p "$stage/$profile"
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    -o "$stage/$profile/kinesis-tail" "$binary"
echo "== cargo generate-rpm"
cargo generate-rpm --target-dir "$stage" --profile "$profile" --output "$rpm"
rm -rf "$stage"

ls -l "$deb" "$rpm"
