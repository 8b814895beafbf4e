#!/usr/bin/env python3
"""Generates realistic benchmark inputs (deterministic, seeded):

- apache.log: Apache combined log, IPv4 and IPv6 clients, long user agents, some odd
  lines (very long URLs, a UTF-8 referer, a line with invalid UTF-8).
- syslog.log, json.log, csv.log: smaller inputs of the other formats.

Usage: gen.py DIR [APACHE_LINES]
"""
import os
import random
import sys

AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.126 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "curl/8.5.0",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
]
PATHS = ["/", "/index.html", "/api/v1/orders?id=%d&expand=items,customer", "/static/js/app.%x.js",
         "/login?next=/account/settings", "/search?q=kinesis+agent+rust&page=%d"]


def host(r):
    if r.random() < 0.25:
        return "2001:db8:%x:%x::%x" % (r.randrange(65536), r.randrange(65536), r.randrange(65536))
    return "%d.%d.%d.%d" % (r.randrange(1, 224), r.randrange(256), r.randrange(256), r.randrange(1, 255))


def apache(path, n):
    r = random.Random(1)
    with open(path, "wb") as f:
        buf = []
        for i in range(n):
            p = r.choice(PATHS)
            if "%" in p:
                p = p % r.randrange(1 << 20)
            if i % 10007 == 0:
                p = "/very/long/" + "segment/" * 200
            ref = "https://example.com/" if i % 5 else "https://exämple.com/ünïcode"
            line = '%s - %s [27/Nov/2026:12:%02d:%02d +0000] "GET %s HTTP/1.1" %d %s "%s" "%s"\n' % (
                host(r), r.choice(["-", "frank", "alice"]), (i // 60) % 60, i % 60, p,
                r.choice([200, 200, 200, 200, 304, 404, 500]),
                r.choice(["-", str(r.randrange(100, 200000))]), ref, r.choice(AGENTS))
            data = line.encode()
            if i % 50021 == 0:
                data = data.replace(b"GET", b"GET \xff\xfe")
            buf.append(data)
            if len(buf) >= 10000:
                f.write(b"".join(buf))
                buf = []
        f.write(b"".join(buf))


def syslog(path, n):
    r = random.Random(2)
    with open(path, "w") as f:
        for i in range(n):
            f.write("Nov 27 12:%02d:%02d web-%02d sshd[%d]: Accepted publickey for user%d from %s port %d ssh2\n"
                    % ((i // 60) % 60, i % 60, r.randrange(40), r.randrange(1, 65000), r.randrange(100),
                       host(r), r.randrange(1024, 65535)))


def jsonl(path, n):
    r = random.Random(3)
    with open(path, "w") as f:
        for i in range(n):
            f.write('{"ts":"2026-11-27T12:00:%02d.%03dZ","level":"%s","msg":"request handled","latency_ms":%d,"path":"%s"}\n'
                    % (i % 60, i % 1000, r.choice(["INFO", "WARN", "ERROR"]), r.randrange(500), r.choice(PATHS)))


def csvf(path, n):
    r = random.Random(4)
    with open(path, "w") as f:
        for i in range(n):
            f.write('%d,2026-11-27T12:00:%02dZ,"%s",%d,%s\n' % (i, i % 60, r.choice(["Smith, J.", "Doe", "O'Brien"]),
                                                            r.randrange(1000), r.choice(["ok", "fail"])))


def main():
    d = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    os.makedirs(d, exist_ok=True)
    apache(os.path.join(d, "apache.log"), n)
    syslog(os.path.join(d, "syslog.log"), n // 5)
    jsonl(os.path.join(d, "json.log"), n // 5)
    csvf(os.path.join(d, "csv.log"), n // 5)


if __name__ == "__main__":
    main()
