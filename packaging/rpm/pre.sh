# kinesis-tail %pre: the system user and group, before the files that they own.
# adm lets it read /var/log where the distribution makes logs readable by that group.
getent group kinesis-tail >/dev/null || groupadd -r kinesis-tail
if ! getent passwd kinesis-tail >/dev/null; then
    useradd -r -g kinesis-tail -d /var/lib/kinesis-tail -M -s /sbin/nologin \
        -c "kinesis-tail log shipper" kinesis-tail
fi
if getent group adm >/dev/null; then
    usermod -a -G adm kinesis-tail
fi
exit 0
