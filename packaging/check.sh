#!/usr/bin/env bash
# CI check of the packages, as root on a Debian machine (it installs and purges the .deb):
#   1. packaging/build.sh: the release binary, the .deb and the .rpm;
#   2. their metadata and file lists (dpkg-deb -I/-c, rpm -qip/-qlp);
#   3. dpkg -i: the user and its groups, the state directory's owner and mode, no unit
#      enabled, `kinesis-tail check` of the installed config as the service user, a
#      `run --once` as that user on an adm-readable log (checkpoints in the state
#      directory), `systemd-analyze verify` of the installed unit, the config kept on
#      reinstall;
#   4. dpkg --purge: the user, the group, the state directory and the files are gone.
# Also validates the container image's default config and the Kubernetes example's.
#
# Usage: packaging/check.sh [build.sh options, e.g. --no-build]
# Exits non-zero with a message naming the first check that failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

START=$SECONDS
fail() { echo "packaging/check.sh: FAIL: $*" >&2; exit 1; }
step() { echo "== [$((SECONDS - START))s] $*"; }
ok() { echo "   ok: $*"; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs and purges the .deb)"
command -v dpkg >/dev/null || fail "needs a Debian system (dpkg)"

PKG=kinesis-tail
USER_NAME=kinesis-tail
STATE_DIR=/var/lib/kinesis-tail
CONFIG=/etc/kinesis-tail/config.yaml
UNIT=/lib/systemd/system/kinesis-tail.service

# ---------------------------------------------------------------- tools
step "tools"
need=()
command -v rpm >/dev/null || need+=(rpm)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v adduser >/dev/null || need+=(adduser) # a Depends of the .deb
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev) # cargo-deb's $auto depends
command -v strip >/dev/null || need+=(binutils)
python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
if [ ${#need[@]} -gt 0 ]; then
    echo "   apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
ok "rpm, systemd-analyze, adduser, dpkg-shlibdeps, strip, python3-yaml"

# A previous run that stopped half-way: start from a machine without the package.
if dpkg -s "$PKG" >/dev/null 2>&1; then
    echo "   $PKG is installed: purging it first"
    dpkg --purge "$PKG" >/dev/null
fi

# ---------------------------------------------------------------- build
step "packaging/build.sh $*"
packaging/build.sh "$@"
target_dir="${CARGO_TARGET_DIR:-target}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
DEB="$target_dir/packages/${PKG}_${version}-1_amd64.deb"
RPM="$target_dir/packages/${PKG}-${version}-1.x86_64.rpm"
[ -f "$DEB" ] || fail "build.sh wrote no $DEB"
[ -f "$RPM" ] || fail "build.sh wrote no $RPM"

# ---------------------------------------------------------------- .deb metadata
step "deb metadata and file list: $DEB"
field() { dpkg-deb -f "$DEB" "$1"; }
[ "$(field Package)" = "$PKG" ] || fail "deb Package is '$(field Package)'"
[ "$(field Version)" = "${version}-1" ] || fail "deb Version is '$(field Version)', expected ${version}-1"
[ "$(field Architecture)" = amd64 ] || fail "deb Architecture is '$(field Architecture)'"
depends="$(field Depends)"
[[ "$depends" == *adduser* ]] || fail "deb Depends lacks adduser: $depends"
[[ "$depends" == *libc6* ]] || fail "deb Depends lacks libc6 (dpkg-shlibdeps): $depends"
[ -n "$(field Maintainer)" ] || fail "deb has no Maintainer"
dpkg-deb -I "$DEB" | sed 's/^/   /'

control_dir="$(mktemp -d)"
trap 'rm -rf "$control_dir"' EXIT
dpkg-deb -e "$DEB" "$control_dir"
[ "$(cat "$control_dir/conffiles")" = "$CONFIG" ] ||
    fail "deb conffiles is '$(cat "$control_dir/conffiles")', expected $CONFIG"
for script in postinst prerm postrm; do
    [ -x "$control_dir/$script" ] || fail "deb has no executable $script"
    sh -n "$control_dir/$script" || fail "deb $script: shell syntax error"
    ! grep -q '#DEBHELPER#' "$control_dir/$script" || fail "deb $script: #DEBHELPER# left in"
done
# Consent: nothing in the scripts enables or starts the unit on a first install.
if grep -nE '^[^#]*(deb-systemd-invoke (start|restart)|systemctl (enable|start))' "$control_dir/postinst"; then
    fail "deb postinst enables or starts the service"
fi

listing="$(dpkg-deb -c "$DEB")"
echo "$listing" | sed 's/^/   /'
expect_deb() { # mode path
    echo "$listing" | awk -v m="$1" -v p="./$2" '$1 == m && $2 == "0/0" && $NF == p { f = 1 } END { exit !f }' ||
        fail "deb lacks $1 root-owned /$2"
}
expect_deb -rwxr-xr-x usr/bin/kinesis-tail
expect_deb -rw-r--r-- etc/kinesis-tail/config.yaml
expect_deb -rw-r--r-- lib/systemd/system/kinesis-tail.service
expect_deb -rw-r--r-- usr/share/doc/kinesis-tail/README.md
expect_deb -rw-r--r-- usr/share/doc/kinesis-tail/LICENSE
expect_deb -rw-r--r-- usr/share/doc/kinesis-tail/copyright
expect_deb -rw-r--r-- usr/share/doc/kinesis-tail/config.example.yaml
ok "deb: metadata, conffiles, maintainer scripts, file list"

# ---------------------------------------------------------------- .rpm metadata
step "rpm metadata and file list: $RPM"
rpm -qip "$RPM" 2>/dev/null | sed 's/^/   /'
q() { rpm -qp --qf "$1" "$RPM" 2>/dev/null; }
[ "$(q '%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE}')" = "$PKG $version 1 x86_64 Apache-2.0" ] ||
    fail "rpm NAME VERSION RELEASE ARCH LICENSE are '$(q '%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE}')'"
files="$(q '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]')"
echo "$files" | sed 's/^/   /'
expect_rpm() { # perms flags path
    echo "$files" | awk -v m="$1" -v f="$2" -v p="$3" '
        { flags = (NF == 4) ? $3 : "-"; path = $NF }
        $1 == m && $2 == "root:root" && flags == f && path == p { found = 1 } END { exit !found }' ||
        fail "rpm lacks $1 root:root flags '$2' $3"
}
expect_rpm -rwxr-xr-x - /usr/bin/kinesis-tail
expect_rpm -rw-r--r-- cn /etc/kinesis-tail/config.yaml # %config(noreplace)
expect_rpm -rw-r--r-- - /usr/lib/systemd/system/kinesis-tail.service
expect_rpm -rw-r--r-- d /usr/share/doc/kinesis-tail/README.md
expect_rpm -rw-r--r-- d /usr/share/doc/kinesis-tail/LICENSE
rpm -qlp "$RPM" 2>/dev/null | grep -qx /usr/share/doc/kinesis-tail/config.example.yaml ||
    fail "rpm lacks /usr/share/doc/kinesis-tail/config.example.yaml"
requires="$(rpm -qp --requires "$RPM" 2>/dev/null)"
for r in /usr/sbin/useradd /usr/sbin/groupadd /usr/sbin/usermod systemd 'libc.so.6()(64bit)'; do
    echo "$requires" | grep -qxF "$r" || fail "rpm does not require $r"
done
scripts="$(rpm -qp --scripts "$RPM" 2>/dev/null)"
for s in preinstall postinstall preuninstall postuninstall; do
    echo "$scripts" | grep -q "^$s scriptlet" || fail "rpm has no $s scriptlet"
done
for f in packaging/rpm/*.sh; do sh -n "$f" || fail "$f: shell syntax error"; done
if grep -nE '^[^#]*systemctl (--no-reload )?(enable|start)' packaging/rpm/*.sh; then
    fail "rpm scriptlets enable or start the service"
fi
ok "rpm: metadata, %config(noreplace), file list, requires, scriptlets"

# ---------------------------------------------------------------- install
step "dpkg -i"
installed=0
cleanup() {
    rm -rf "$control_dir"
    if [ -n "${example_dir:-}" ]; then rm -rf "$example_dir"; fi
    if [ "$installed" = 1 ]; then dpkg --purge "$PKG" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
dpkg -i "$DEB" || fail "dpkg -i $DEB failed"
installed=1

getent passwd "$USER_NAME" >/dev/null || fail "no user $USER_NAME after install"
getent group "$USER_NAME" >/dev/null || fail "no group $USER_NAME after install"
[ "$(id -gn "$USER_NAME")" = "$USER_NAME" ] || fail "primary group of $USER_NAME is $(id -gn "$USER_NAME")"
id -nG "$USER_NAME" | tr ' ' '\n' | grep -qx adm || fail "$USER_NAME is not in adm: $(id -nG "$USER_NAME")"
uid="$(id -u "$USER_NAME")"
[ "$uid" -lt 1000 ] || fail "$USER_NAME has uid $uid: not a system user"
shell="$(getent passwd "$USER_NAME" | cut -d: -f7)"
[[ "$shell" == */nologin ]] || fail "$USER_NAME has the login shell $shell"
ok "user $(id "$USER_NAME"), shell $shell"

[ -d "$STATE_DIR" ] || fail "no $STATE_DIR after install"
state="$(stat -c '%U:%G %a' "$STATE_DIR")"
[ "$state" = "$USER_NAME:$USER_NAME 750" ] || fail "$STATE_DIR is '$state', expected $USER_NAME:$USER_NAME 750"
ok "$STATE_DIR $state"

for f in /usr/bin/kinesis-tail "$CONFIG" "$UNIT" /usr/share/doc/kinesis-tail/README.md \
    /usr/share/doc/kinesis-tail/LICENSE; do
    [ -f "$f" ] || fail "$f is not installed"
done
/usr/bin/kinesis-tail --version | grep -qF "$version" || fail "kinesis-tail --version does not say $version"
# Consent: installed, not enabled.
if ls /etc/systemd/system/*.wants/kinesis-tail.service 2>/dev/null; then
    fail "the package enabled kinesis-tail.service"
fi
ok "files installed, $(/usr/bin/kinesis-tail --version), unit not enabled"

step "kinesis-tail check -c $CONFIG (as $USER_NAME)"
runuser -u "$USER_NAME" -- /usr/bin/kinesis-tail check -c "$CONFIG" ||
    fail "kinesis-tail check rejects the packaged $CONFIG"
ok "the packaged config is valid and readable by $USER_NAME"

step "run --once as $USER_NAME: an adm-readable log in, checkpoints out"
# The packaged flow's pattern, on a file that only root and adm may read.
example_dir=/var/log/kinesis-tail-example
[ ! -e "$example_dir" ] || fail "$example_dir exists already; refusing to touch it"
install -d -o root -g adm -m 0750 "$example_dir"
printf 'first line\nsecond line\n' >"$example_dir/check.log"
chown root:adm "$example_dir/check.log"
chmod 0640 "$example_dir/check.log"
shipped="$(cd / && NO_COLOR=1 runuser -u "$USER_NAME" -- timeout 60 /usr/bin/kinesis-tail run --once -c "$CONFIG")" ||
    fail "kinesis-tail run --once as $USER_NAME failed"
rm -rf "$example_dir"
[ "$shipped" = "$(printf 'first line\nsecond line')" ] || fail "run --once printed '$shipped'"
[ "$(stat -c %U "$STATE_DIR/checkpoints" 2>/dev/null)" = "$USER_NAME" ] ||
    fail "no $STATE_DIR/checkpoints written by $USER_NAME"
ok "read through adm, checkpoint written in $STATE_DIR"

step "systemd-analyze verify $UNIT"
verify_out="$(systemd-analyze verify "$UNIT" 2>&1)" || {
    echo "$verify_out" >&2
    fail "systemd-analyze verify $UNIT"
}
# Warnings about other units of this machine are not ours; any about this one fail.
if echo "$verify_out" | grep -F kinesis-tail; then
    fail "systemd-analyze verify warns about $UNIT"
fi
ok "systemd-analyze verify"

step "reinstall keeps a modified config"
echo "# local edit $$" >>"$CONFIG"
dpkg -i "$DEB" >/dev/null || fail "dpkg -i over the installed package failed"
grep -qx "# local edit $$" "$CONFIG" || fail "reinstall replaced the modified $CONFIG"
[ "$(stat -c '%U:%G %a' "$STATE_DIR")" = "$USER_NAME:$USER_NAME 750" ] || fail "reinstall changed $STATE_DIR"
ok "config kept"

step "container and Kubernetes configs"
KINESIS_TAIL_FILE_PATTERN='/var/log/app/*.log' KINESIS_TAIL_STREAM=example \
    /usr/bin/kinesis-tail check -c packaging/container-config.yaml >/dev/null ||
    fail "kinesis-tail check rejects packaging/container-config.yaml"
k8s_config="$(mktemp)"
python3 - "$k8s_config" <<'EOF' || fail "packaging/kubernetes/daemonset.yaml is not as expected"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open("packaging/kubernetes/daemonset.yaml")) if d]
kinds = [d["kind"] for d in docs]
assert kinds == ["Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"], kinds
cm = next(d for d in docs if d["kind"] == "ConfigMap")
open(sys.argv[1], "w").write(cm["data"]["config.yaml"])
ds = next(d for d in docs if d["kind"] == "DaemonSet")
mounts = {m["mountPath"] for m in ds["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
assert {"/var/log/containers", "/var/log/pods", "/var/lib/kinesis-tail", "/etc/kinesis-tail"} <= mounts, mounts
EOF
AWS_REGION=eu-west-1 KINESIS_STREAM=example NODE_NAME=node-1 \
    /usr/bin/kinesis-tail check -c "$k8s_config" >/dev/null ||
    fail "kinesis-tail check rejects the ConfigMap of packaging/kubernetes/daemonset.yaml"
python3 - "$k8s_config" <<'EOF' || fail "packaging/kubernetes/sidecar.yaml is not as expected"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open("packaging/kubernetes/sidecar.yaml")) if d]
kinds = [d["kind"] for d in docs]
assert kinds == ["ConfigMap", "Pod"], kinds
open(sys.argv[1], "w").write(docs[0]["data"]["config.yaml"])
spec = docs[1]["spec"]
agent = spec["initContainers"][0]
assert agent["restartPolicy"] == "Always", agent
assert agent["securityContext"]["runAsUser"] == 65532
app = spec["containers"][0]
logs = lambda c: next(m for m in c["volumeMounts"] if m["mountPath"] == "/var/log/app")
assert logs(agent)["name"] == logs(app)["name"] == "logs"
vols = {v["name"]: v for v in spec["volumes"]}
assert "emptyDir" in vols["logs"] and "emptyDir" in vols["state"], vols
EOF
AWS_REGION=eu-west-1 KINESIS_STREAM=example POD_NAME=billing POD_NAMESPACE=default \
    /usr/bin/kinesis-tail check -c "$k8s_config" >/dev/null ||
    fail "kinesis-tail check rejects the ConfigMap of packaging/kubernetes/sidecar.yaml"
rm -f "$k8s_config"
ok "packaging/container-config.yaml, the DaemonSet's and the sidecar's ConfigMaps"

# ---------------------------------------------------------------- purge
step "dpkg --purge"
dpkg --purge "$PKG" || fail "dpkg --purge $PKG failed"
installed=0
! getent passwd "$USER_NAME" >/dev/null || fail "user $USER_NAME left after purge"
! getent group "$USER_NAME" >/dev/null || fail "group $USER_NAME left after purge"
! getent group adm | cut -d: -f4 | tr ',' '\n' | grep -qx "$USER_NAME" || fail "$USER_NAME left in adm"
for f in "$STATE_DIR" /etc/kinesis-tail /usr/bin/kinesis-tail "$UNIT" /usr/share/doc/kinesis-tail; do
    [ ! -e "$f" ] || fail "$f left after purge"
done
ok "user, group, state directory, config and files gone"

step "all packaging checks passed in $((SECONDS - START))s"
