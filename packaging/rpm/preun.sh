# kinesis-tail %preun, as %systemd_preun: on erase (not upgrade), disable and stop.
if [ $1 -eq 0 ] && [ -x /usr/bin/systemctl ]; then
    /usr/bin/systemctl --no-reload disable --now kinesis-tail.service >/dev/null 2>&1 || :
fi
exit 0
