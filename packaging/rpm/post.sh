# kinesis-tail %post. The state directory (checkpoints), owned by the service user; an
# existing one keeps its mode and owner.
if [ ! -d /var/lib/kinesis-tail ]; then
    install -d -o kinesis-tail -g kinesis-tail -m 0750 /var/lib/kinesis-tail
fi
# As the %systemd_post macro expands: on first install, apply the system's preset policy
# (distributions disable units they do not list), so nothing is enabled without the
# admin's consent.
if [ $1 -eq 1 ] && [ -x /usr/bin/systemctl ]; then
    /usr/bin/systemctl --no-reload preset kinesis-tail.service >/dev/null 2>&1 || :
fi
if [ -d /run/systemd/system ]; then
    /usr/bin/systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
