#!/usr/bin/env bash
# The benchmark: generates inputs (1,000,000-line Apache combined log and others) under
# target/bench-data, builds the release binary, runs every scenario under /usr/bin/time -v
# and prints one table; writes bench/results.md and bench/chart.png.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
.venv-test/bin/python -c 'import matplotlib' 2>/dev/null || .venv-test/bin/pip install --quiet matplotlib
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
target=${CARGO_TARGET_DIR:-target}
data=$target/bench-data
if [ ! -f "$data/apache.log" ]; then
  .venv-test/bin/python bench/gen.py "$data" 1000000
fi
cargo build --release --quiet --bin kinesis-tail
.venv-test/bin/python bench/run.py "$target/release/kinesis-tail" "$data" .venv-test/bin/moto_server .venv-test/bin/python
