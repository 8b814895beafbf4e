#!/usr/bin/env bash
# Creates .venv-test with the local AWS emulator (moto server), boto3 and the reference
# KPL de-aggregator. Idempotent: does nothing when the venv is already complete.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-test
if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import boto3, aws_kinesis_agg, moto' 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.*' boto3 aws-kinesis-agg
