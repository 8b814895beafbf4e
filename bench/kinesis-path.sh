#!/usr/bin/env bash
# The Kinesis path, whole process, side by side (see bench/kinesis_path.py): kinesis-tail
# plain and KPL, and the peers named by FLUENT_BIT / VECTOR, into moto behind nginx (TLS,
# keep-alive). Installs nginx and time (Debian) when missing. Nothing leaves 127.0.0.1.
#
#   FLUENT_BIT=../shared/peers/fluent-bit VECTOR=../shared/peers/vector bench/kinesis-path.sh [LINES]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/bin/time ] || need+=(time)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
cargo build --release --quiet --bin kinesis-tail
.venv-test/bin/python bench/kinesis_path.py "${CARGO_TARGET_DIR:-target}/release/kinesis-tail" "${1:-100000}"
