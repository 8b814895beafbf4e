#!/usr/bin/env bash
# CI check of the container image, as root, without a Docker daemon or a registry:
#   1. packaging/image.sh: the image, as an OCI archive (buildah bud, FROM scratch);
#   2. umoci unpacks it into a runtime bundle (rootfs + the OCI runtime config made from
#      the image's config: user, entrypoint, command, environment, working directory);
#   3. the bundle is run as a runtime runs it: new mount, PID, IPC and UTS namespaces
#      (unshare), the rootfs as root (chroot), the image's user and environment, the
#      host's network so that the emulator on 127.0.0.1 is reachable. (crun, the
#      reference runtime, refuses hosts with hybrid cgroup v1 + v2, as CI machines have.)
#      Checked: `--version`; `check` of the image's default config; that it runs as
#      65532 and not root; that `run` with a mounted config, log directory and state
#      volume ships every line of the log into a serialised Kinesis emulator, and stops
#      cleanly on SIGTERM with its checkpoints written to the state volume, owned by
#      65532.
# Prints the image's size, layers and user, and each step's time.
#
# Usage: packaging/image-check.sh [--no-build]   (passed on to image.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
START=$SECONDS
fail() { echo "packaging/image-check.sh: FAIL: $*" >&2; exit 1; }
step() { echo "== [$((SECONDS - START))s] $*"; }
ok() { echo "   ok: $*"; }

[ "$(id -u)" = 0 ] || fail "run as root (it unpacks the image with its owners and chroots)"
need=()
command -v umoci >/dev/null 2>&1 || need+=(umoci)
command -v buildah >/dev/null 2>&1 || need+=(buildah)
if [ ${#need[@]} -gt 0 ]; then
    step "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x .venv-test/bin/python ] || scripts/setup-venv.sh

step "packaging/image.sh $*"
archive=$(packaging/image.sh "$@" | tail -n1)
[ -s "$archive" ] || fail "packaging/image.sh made no archive"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
tag="localhost/kinesis-tail:$version"
ok "$archive ($(du -h "$archive" | cut -f1))"

work=$(mktemp -d)
moto=
agent=
cleanup() {
    [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
    [ -n "$moto" ] && kill "$moto" 2>/dev/null
    umount -R "$work/bundle/rootfs" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

step "umoci unpack"
mkdir "$work/oci"
tar -xf "$archive" -C "$work/oci"
umoci unpack --image "$work/oci:$tag" "$work/bundle" >/dev/null
bundle="$work/bundle"
rootfs="$bundle/rootfs"
python3 - "$work/oci" "$bundle/config.json" <<'EOF' || fail "the image's config is not as expected"
import json, os, sys
oci, cfg = sys.argv[1], json.load(open(sys.argv[2]))
index = json.load(open(os.path.join(oci, "index.json")))
blob = lambda d: os.path.join(oci, "blobs", *d["digest"].split(":"))
manifest = json.load(open(blob(index["manifests"][0])))
layers = manifest["layers"]
print(f"   layers: {len(layers)}: " + ", ".join(
    f"{l['digest'][:19]} {l['size'] / 1e6:.1f} MB ({l['mediaType'].rsplit('.', 1)[-1]})" for l in layers))
proc = cfg["process"]
print(f"   user {proc['user']['uid']}:{proc['user']['gid']}, args {proc['args']}, cwd {proc['cwd']}")
assert proc["user"]["uid"] == 65532 and proc["user"]["gid"] == 65532, proc["user"]
assert proc["args"] == ["/usr/bin/kinesis-tail", "run", "-c", "/etc/kinesis-tail/config.yaml"], proc["args"]
assert "NO_COLOR=1" in proc["env"], proc["env"]
EOF
# The state directory: the user's, not writable by others (COPY gives it mode 0755).
state_mode=$(stat -c '%u:%g %a' "$rootfs/var/lib/kinesis-tail")
[[ "$state_mode" =~ ^65532:65532\ 7[0-5][0-5]$ ]] ||
    fail "/var/lib/kinesis-tail in the image is $state_mode"
interp=$(readelf -l "$rootfs/usr/bin/kinesis-tail" | sed -n 's/.*interpreter: \(.*\)]/\1/p')
[ -z "$interp" ] || [ -e "$rootfs$interp" ] || fail "the image lacks the binary's loader $interp"
ok "image config, owners, loader; rootfs $(du -sh "$rootfs" | cut -f1)"

# The OCI runtime config's process, as a runtime would start it; extra `-e VAR=...` and
# `-v HOST:PATH` (bind mounts) before the arguments, which replace the image's command.
mapfile -t image_env < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["process"]["env"]))' "$bundle/config.json")
run_image() {
    local envs=() mounts=""
    while [ $# -gt 0 ]; do
        case "$1" in
            -e) envs+=("$2"); shift 2 ;;
            -v) mounts+="mkdir -p '$rootfs${2#*:}' && mount --bind '${2%%:*}' '$rootfs${2#*:}' && "; shift 2 ;;
            *) break ;;
        esac
    done
    [ $# -gt 0 ] || set -- run -c /etc/kinesis-tail/config.yaml
    mkdir -p "$rootfs/proc" "$rootfs/dev"
    unshare --mount --pid --fork --ipc --uts sh -c "
        ${mounts}mount -t proc proc '$rootfs/proc' && mount --rbind /dev '$rootfs/dev' &&
        exec env -i \"\$@\"" \
        run-image "${image_env[@]}" "${envs[@]}" \
        chroot --userspec=65532:65532 "$rootfs" /usr/bin/kinesis-tail "$@"
}

step "kinesis-tail --version"
out=$(run_image --version) || fail "--version failed: $out"
[[ "$out" == *"$version"* ]] || fail "--version printed $out"
ok "$out"

step "kinesis-tail check of the image's default config"
out=$(run_image -e KINESIS_TAIL_FILE_PATTERN=/var/log/app/*.log -e KINESIS_TAIL_STREAM=ci check 2>&1) ||
    fail "check of the default config failed: $out"
[[ "$out" == *"/var/log/app/*.log"* ]] || fail "check does not show the pattern: $out"
ok "loads"

step "run: a mounted log into the emulator, SIGTERM, checkpoints on the state volume"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
.venv-test/bin/python tests/support/moto_serial.py -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto=$!
for _ in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
    sleep 0.1
done
.venv-test/bin/python - "$endpoint" <<'EOF' || fail "cannot create the stream in the emulator"
import sys, time, boto3
kin = boto3.client("kinesis", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
kin.create_stream(StreamName="image-ci", ShardCount=1)
while kin.describe_stream_summary(StreamName="image-ci")["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
    time.sleep(0.1)
EOF
mkdir -p "$work/logs" "$work/state" "$work/config"
chown 65532:65532 "$work/state"
chmod 0750 "$work/state"
lines=2000
seq -f "image-ci line %g" 1 "$lines" >"$work/logs/app.log"
chmod 0644 "$work/logs/app.log"
cat >"$work/config/config.yaml" <<YAML
checkpointFile: /var/lib/kinesis-tail/checkpoints
kinesis.endpoint: $endpoint
kinesis.region: us-east-1
cloudwatch.emitMetrics: false
flows:
  - filePattern: /var/log/app/*.log
    kinesisStream: image-ci
    initialPosition: START_OF_FILE
YAML
chmod 0644 "$work/config/config.yaml"
run_image -e AWS_ACCESS_KEY_ID=testing -e AWS_SECRET_ACCESS_KEY=testing -e AWS_EC2_METADATA_DISABLED=true \
    -v "$work/logs:/var/log/app" -v "$work/state:/var/lib/kinesis-tail" -v "$work/config:/etc/kinesis-tail" \
    >"$work/agent.log" 2>&1 &
runner=$!
# The agent: the process that unshare forked and that exec'd into kinesis-tail.
for _ in $(seq 1 100); do
    agent=$(pgrep -f -n '^/usr/bin/kinesis-tail run -c /etc/kinesis-tail/config.yaml' || true)
    [ -n "$agent" ] && break
    sleep 0.1
done
[ -n "$agent" ] || fail "the agent did not start: $(cat "$work/agent.log")"
user=$(stat -c '%u:%g' "/proc/$agent")
[ "$user" = "65532:65532" ] || fail "the agent runs as $user"
grep -q '^Uid:.*\b0\b' "/proc/$agent/status" && fail "the agent has uid 0 in its uid set"
ok "agent pid $agent runs as $user"
count=0
for _ in $(seq 1 300); do
    count=$(.venv-test/bin/python scripts/kinesis_read.py "$endpoint" image-ci --count 2>/dev/null || echo 0)
    [ "$count" -ge "$lines" ] && break
    sleep 0.2
done
[ "$count" = "$lines" ] || fail "$count of $lines records arrived: $(tail -20 "$work/agent.log")"
ok "$count of $lines lines in the stream"
kill -TERM "$agent"
status=0
wait "$runner" || status=$?
agent=
[ "$status" = 0 ] || fail "the agent exited $status on SIGTERM: $(tail -20 "$work/agent.log")"
cp_file="$work/state/checkpoints"
[ -s "$cp_file" ] || fail "no checkpoint file on the state volume"
[ "$(stat -c '%u:%g' "$cp_file")" = "65532:65532" ] || fail "checkpoints owned by $(stat -c '%u:%g' "$cp_file")"
python3 - "$cp_file" "$(stat -c %s "$work/logs/app.log")" <<'EOF' || fail "the checkpoint file does not cover the log: $(cat "$cp_file")"
import json, sys
size = int(sys.argv[2])
found = []
def walk(v):
    if isinstance(v, dict):
        if str(v.get("path", "")) == "/var/log/app/app.log":
            found.append(v)
        for x in v.values():
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
walk(json.load(open(sys.argv[1])))
assert found and all(e["offset"] == size for e in found), (found, size)
EOF
ok "exit 0 on SIGTERM, checkpoints at the log's end, owned by 65532"

step "all image checks passed in $((SECONDS - START))s"
