#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/corpus/<target>/seed-*) from the test fixtures and the
examples. Re-run after changing a fixture; the generated inputs libFuzzer adds beside the
seeds are not committed."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def read(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# config_load: the documents the config tests start from.
write("config_load", "agent.json", read("tests/fixtures/config/agent.json"))
write("config_load", "example.yaml", read("config.example.yaml"))
write("config_load", "packaging.yaml", read("packaging/config.yaml"))
write("config_load", "csv.yaml", b"flows:\n  - filePattern: /var/log/*.log\n    kinesisStream: s\n"
      b"    partitionKeyOption: 'REGEX:(\\d+)'\n    dataProcessingOptions:\n"
      b"      - {optionName: CSVTOJSON, customFieldNames: [a], delimiter: '\\t'}\n")
write("config_load", "json-comments.json", b'// comment\n{"flows": [{"filePattern": "/tmp/*.log", /* c */ '
      b'"deliveryStream": "d", "multiLineStartPattern": "^\\\\d", "maxBufferAgeMillis": "${AGE}"}]}\n')

# framing: [options, max size, chunking seed] + file bytes.
app = read("examples/app.log")[:2000]
access = read("examples/access.log")[:2000]
write("framing", "app-plain", bytes([0x00, 0x80, 3]) + app)
write("framing", "app-multiline", bytes([0x04 | 0x01, 0x4a, 9]) + app + b"  at frame\n  at frame\n2026-x\n")
write("framing", "access-truncated", bytes([0x10 | 0x60 | 0x80, 0x20, 200]) + access + b"END\npartial")
write("framing", "crlf-utf8", bytes([0x08 | 0x40, 0x05, 1]) + "caf\u00e9 \u20ac\r\n\n\x00\nna\u00efve".encode())

# logtojson: [format | names << 3 | pretty << 5] + records.
samples = [
    # COMMONAPACHELOG
    b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326\n'
    b'<34>2001:db8::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 304 - extra',
    # COMBINEDAPACHELOG
    access + b'\n<134>::1 - - [27/Nov/2026:12:00:00 +0000] "GET /x HTTP/1.1" 200 - "-" "curl \\"8\\""',
    # APACHEERRORLOG
    b"[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:54203] File does not exist: /x\n"
    b"[Wed Oct 11 14:32:52 2000] [error] [client 2001:db8::7] client denied by server configuration: /export",
    # SYSLOG
    b"Mar 12 12:00:08 server2 rcd[308]: Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds)\n"
    b"<13>Jan  5 00:00:01 host-1 kernel: [ 1.2] usb 1-1: new device",
    # RFC3339SYSLOG
    b"2026-11-27T12:00:00.000Z host app[12]: started\n<14>2026-11-27T12:00:00+01:00 h p: m",
    # RFC5424SYSLOG
    b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8\n"
    b'<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - [exampleSDID@32473 iut="3" eventSource="App]lication"][x@1 a="b"]',
    # JSON
    b' {"b": 1, "a": {"x": [true, null]}, "s": "\xc3\xa9\\n"} \n{"a":1}\n[1]',
]
for fmt, body in enumerate(samples):
    write("logtojson", "format%d" % fmt, bytes([fmt]) + body)
write("logtojson", "custom-names-pretty", bytes([0 | (2 << 3) | 0x20]) + samples[1])

# csvtojson: [delimiter | (fields - 1) << 3] + records.
write("csvtojson", "comma", bytes([0 | (2 << 3)]) + b'1,2,3\n1\n1,2,3,4,5\n"x, y",,"say ""hi"""\n1,\xc3\xa9,3\r\n')
write("csvtojson", "tab", bytes([1 | (1 << 3)]) + b"2026-11-27\ta,b c\n\n\"unterminated\tx\n")
write("csvtojson", "nul", bytes([7]) + b"a\x00b\n\"q\x00\"\n")
