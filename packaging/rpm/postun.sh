# kinesis-tail %postun, as %systemd_postun_with_restart: after an upgrade, restart the
# service if it was running. The user and the checkpoints stay on erase (RPM convention).
if [ -d /run/systemd/system ]; then
    /usr/bin/systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ $1 -ge 1 ] && [ -x /usr/bin/systemctl ]; then
    /usr/bin/systemctl try-restart kinesis-tail.service >/dev/null 2>&1 || :
fi
exit 0
