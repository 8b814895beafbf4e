#!/usr/bin/env bash
# The main job, on a fresh machine: starts a local Kinesis emulator (moto) on loopback,
# creates a 2-shard stream, runs kinesis-tail on the sample logs in examples/ (Apache
# access log parsed to JSON and KPL-aggregated; a Java-style log with stack traces
# framed as multi-line records), and prints what arrived, de-aggregated.
# Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/setup-venv.sh
echo "== building kinesis-tail"
cargo build --quiet --bin kinesis-tail
bin=${CARGO_TARGET_DIR:-$root/target}/debug/kinesis-tail

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
.venv-test/bin/python tests/support/moto_serial.py -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then break; fi
  sleep 0.1
done
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
.venv-test/bin/python - "$endpoint" <<'PY'
import sys, time, boto3
kin = boto3.client("kinesis", endpoint_url=sys.argv[1], region_name="us-east-1")
kin.create_stream(StreamName="demo", ShardCount=2)
while kin.describe_stream_summary(StreamName="demo")["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
    time.sleep(0.1)
PY
mkdir -p "$work/logs"
cp examples/access.log examples/app.log "$work/logs/"
cat >"$work/config.yaml" <<YAML
checkpointFile: $work/checkpoints
cloudwatch.emitMetrics: false
kinesis.endpoint: $endpoint
kinesis.region: us-east-1
flows:
  - filePattern: $work/logs/access.log
    kinesisStream: demo
    initialPosition: START_OF_FILE
    aggregation: KPL
    partitionKeyOption: DETERMINISTIC
    dataProcessingOptions:
      - optionName: LOGTOJSON
        logFormat: COMBINEDAPACHELOG
        # The Java agent's pattern drops lines with an IPv6 host; lenient parses them.
        lenient: true
  - filePattern: $work/logs/app.log
    kinesisStream: demo
    initialPosition: START_OF_FILE
    multiLineStartPattern: '^\d{4}-\d{2}-\d{2}T'
    dataProcessingOptions:
      - optionName: SINGLELINE
        parseOptions: [ESCAPE_NEW_LINE]
YAML
echo "== config"
"$bin" check -c "$work/config.yaml"
echo "== shipping examples/access.log and examples/app.log (kinesis-tail run --once)"
"$bin" run --once -c "$work/config.yaml"
echo "== what arrived in stream 'demo' (shard, partition key, record), de-aggregated"
.venv-test/bin/python scripts/kinesis_read.py "$endpoint" demo | cut -c1-220
