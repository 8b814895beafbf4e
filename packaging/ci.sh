#!/usr/bin/env bash
# CI entry point for the packaging, called by .ci/run (as root, on Debian): builds the
# release binary, the .deb and the .rpm, checks them, installs and purges the .deb; then
# builds the container image from the same binary and runs it.
# See packaging/check.sh and packaging/image-check.sh for what is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
packaging/check.sh "$@"
packaging/image-check.sh --no-build
echo "== packaging/ci.sh: done in $((SECONDS - start))s"
