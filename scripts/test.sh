#!/usr/bin/env bash
# Runs every test: unit, property and integration tests (these start their own moto
# server on a free loopback port). Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
export AWS_EC2_METADATA_DISABLED=true
export KT_MOTO_SERVER="$PWD/.venv-test/bin/moto_server"
export KT_PYTHON="$PWD/.venv-test/bin/python"
cargo test --all-targets --no-fail-fast "$@"
