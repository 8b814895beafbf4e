#!/usr/bin/env python3
"""The Kinesis path, whole process, side by side: every agent gets the same Apache
combined log (IPv4 clients only, so that every parser takes every line), parses it to
JSON and ships it to a 4-shard stream of a serialised moto behind nginx (TLS with
keep-alive, a CA-signed leaf certificate for 127.0.0.1). Each agent's own CPU and peak
RSS come from /usr/bin/time -v; what arrived is counted (KPL aggregates de-aggregated).
moto bounds the wall time (about a thousand entries a second), so compare CPU per GiB
of log and memory, not speed. Figures only: nothing here passes or fails.

Agents: kinesis-tail plain PutRecords (the default, as the Java agent sends) and KPL;
Fluent Bit (tail + apache2 parser + kinesis_streams) when FLUENT_BIT names its binary;
Vector (file + parse_apache_log + aws_kinesis_streams) when VECTOR names its binary.

Usage: kinesis_path.py KINESIS_TAIL_BINARY [LINES]   (run by bench/kinesis-path.sh)
KT_PROFILE=PREFIX records a perf profile of each kinesis-tail run to PREFIX.<stream>.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from benchutil import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = os.path.join(ROOT, ".venv-test", "bin", "python")
BIN = os.path.abspath(sys.argv[1])
LINES = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
GIB = 1024 ** 3
MIB = 1024 ** 2
ENV = dict(os.environ, AWS_EC2_METADATA_DISABLED="true", AWS_ACCESS_KEY_ID="testing",
           AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1", RUST_LOG="warn")


def wait_port(port, limit=20):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def generate(path, n):
    """Apache combined lines, deterministic, IPv4 clients."""
    agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
              "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
              "curl/8.5.0"]
    with open(path, "w") as f:
        for i in range(n):
            f.write(f'10.{i % 250}.{(i // 7) % 250}.{1 + (i // 13) % 250} - user{i % 50} '
                    f'[27/Nov/2026:12:{i % 60:02}:{(i // 60) % 60:02} +0000] '
                    f'"GET /api/v1/orders?id={i}&page={i % 9} HTTP/1.1" {[200, 304, 404, 500][i % 4]} '
                    f'{i * 37 % 100000} "https://example.com/page/{i % 100}" "{agents[i % 3]}"\n')


def certificates(d):
    """A CA, and a leaf for 127.0.0.1 signed by it (rustls refuses a CA as end entity)."""
    def run(*a):
        subprocess.run(a, check=True, capture_output=True, cwd=d)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=bench CA",
        "-keyout", "ca.key", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "leaf.key", "-out", "leaf.csr")
    with open(os.path.join(d, "leaf.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "leaf.ext", "-out", "leaf.pem")
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    return os.path.join(d, "ca.pem")


def nginx(d, tls_port, moto_port):
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    os.chmod(os.path.join(d, "tmp"), 0o777)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  upstream moto {{ server 127.0.0.1:{moto_port}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{tls_port} ssl;
    ssl_certificate {d}/leaf.pem;
    ssl_certificate_key {d}/leaf.key;
    keepalive_timeout 120s;
    keepalive_requests 100000;
    client_max_body_size 20m;
    client_body_buffer_size 20m;
    proxy_read_timeout 300s;
    location / {{
      proxy_pass http://moto;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host:$server_port;
    }}
  }}
}}
""")
    p = subprocess.Popen(["nginx", "-c", conf, "-p", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(tls_port)
    return p


def create_stream(endpoint, name):
    subprocess.run([PY, "-c", f"""
import boto3, time
k = boto3.client("kinesis", endpoint_url="{endpoint}", region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing")
k.create_stream(StreamName="{name}", ShardCount=4)
while k.describe_stream_summary(StreamName="{name}")["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
    time.sleep(0.1)
"""], check=True)


def count(endpoint, name):
    out = subprocess.run([PY, os.path.join(ROOT, "scripts", "kinesis_read.py"), endpoint, name, "--count"],
                         capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def parse_time(stderr):
    cpu = rss = wall = 0.0
    for line in stderr.splitlines():
        line = line.strip()
        if line.startswith("User time") or line.startswith("System time"):
            cpu += float(line.rsplit(":", 1)[1])
        elif line.startswith("Maximum resident set size"):
            rss = int(line.rsplit(":", 1)[1]) / 1024
        elif line.startswith("Elapsed (wall clock)"):
            parts = [float(x) for x in line.rsplit(" ", 1)[1].split(":")]
            wall = sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
    return cpu, rss, wall


def run_agent(args, cwd, endpoint, stream, expected, exits, limit):
    """Runs args under time -v until it exits (`exits`) or `expected` records arrived;
    then SIGTERM. Returns (cpu s, peak RSS MiB, wall s, records arrived)."""
    p = subprocess.Popen(["/usr/bin/time", "-v"] + args, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + limit
    while not exits and time.time() < deadline and p.poll() is None:
        time.sleep(3)
        if count(endpoint, stream) >= expected:
            break
    if p.poll() is None and not exits:
        # SIGTERM to the agent (time(1)'s child), which flushes and exits; time(1) then
        # reports and exits.
        children = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        for c in children:
            os.kill(int(c), signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=limit if exits else 60)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    cpu, rss, wall = parse_time(err)
    return cpu, rss, wall, count(endpoint, stream)


def main():
    work = tempfile.mkdtemp(prefix="kt-kinesis-path-")
    log = os.path.join(work, "access.log")
    generate(log, LINES)
    size = os.path.getsize(log)
    ca = certificates(work)
    moto_port, tls_port = free_port(), free_port()
    moto = subprocess.Popen([PY, os.path.join(ROOT, "tests", "support", "moto_serial.py"), "-H", "127.0.0.1",
                             "-p", str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(moto_port)
    web = nginx(work, tls_port, moto_port)
    http = f"http://127.0.0.1:{moto_port}"
    https = f"https://127.0.0.1:{tls_port}"
    rows = []
    limit = max(600, LINES // 100)
    try:
        for name, extra in [("kinesis-tail, plain PutRecords", ""),
                            ("kinesis-tail, KPL", "    aggregation: KPL\n")]:
            stream = "kt" + str(len(rows))
            create_stream(http, stream)
            d = os.path.join(work, stream)
            os.makedirs(d)
            cfg = os.path.join(d, "config.yaml")
            with open(cfg, "w") as f:
                f.write(f"""checkpointFile: {d}/checkpoints
cloudwatch.emitMetrics: false
kinesis.endpoint: {https}
flows:
  - filePattern: {log}
    kinesisStream: {stream}
    initialPosition: START_OF_FILE
    dataProcessingOptions:
      - optionName: LOGTOJSON
        logFormat: COMBINEDAPACHELOG
{extra}""")
            ENV["AWS_CA_BUNDLE"] = ca
            cmd = [BIN, "run", "--once", "-c", cfg]
            profile = os.environ.get("KT_PROFILE")
            if profile:
                # perf's own CPU then counts too: for where the time goes, not for the table.
                cmd = ["perf", "record", "-q", "-F", "999", "-e", "cpu-clock", "-g",
                       "-o", f"{profile}.{stream}"] + cmd
            rows.append((name,) + run_agent(cmd, d, http, stream, LINES, True, limit))
        fb = os.environ.get("FLUENT_BIT")
        if fb:
            stream = "fluentbit"
            create_stream(http, stream)
            d = os.path.join(work, stream)
            os.makedirs(d)
            cfg = os.path.join(d, "fb.conf")
            with open(cfg, "w") as f:
                f.write(f"""[SERVICE]
    Flush 1
    Grace 120
    Log_Level warn
    Parsers_File {os.path.join(os.path.dirname(os.path.abspath(fb)), "fluent-bit-parsers.conf")}
[INPUT]
    Name tail
    Path {log}
    Read_from_Head On
    Exit_On_Eof On
    DB {d}/fb.db
[FILTER]
    Name parser
    Match *
    Key_Name log
    Parser apache2
[OUTPUT]
    Name kinesis_streams
    Match *
    region us-east-1
    stream {stream}
    endpoint 127.0.0.1
    port {tls_port}
    tls.ca_file {ca}
""")
            rows.append(("Fluent Bit (tail + apache2 + kinesis_streams)",)
                        + run_agent([os.path.abspath(fb), "-c", cfg], d, http, stream, LINES, True, limit))
        vec = os.environ.get("VECTOR")
        if vec:
            stream = "vector"
            create_stream(http, stream)
            d = os.path.join(work, stream)
            os.makedirs(os.path.join(d, "data"))
            cfg = os.path.join(d, "vector.json")
            with open(cfg, "w") as f:
                json.dump({"data_dir": os.path.join(d, "data"),
                           "sources": {"in": {"type": "file", "include": [log], "read_from": "beginning"}},
                           "transforms": {"parse": {"type": "remap", "inputs": ["in"],
                                                    "source": '. = parse_apache_log!(.message, format: "combined")'}},
                           "sinks": {"out": {"type": "aws_kinesis_streams", "inputs": ["parse"], "stream_name": stream,
                                             "region": "us-east-1", "endpoint": https, "tls": {"ca_file": ca},
                                             "encoding": {"codec": "json"},
                                             "auth": {"access_key_id": "testing", "secret_access_key": "testing"}}}},
                          f)
            rows.append(("Vector (file + parse_apache_log + aws_kinesis_streams)",)
                        + run_agent([os.path.abspath(vec), "--config", cfg], d, http, stream, LINES, False, limit))
    finally:
        web.terminate()
        moto.terminate()
        web.wait()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)

    fb_row = next((r for r in rows if r[0].startswith("Fluent Bit")), None)
    print(f"\n{LINES:,} Apache combined lines ({size / MIB:.1f} MiB), parsed to JSON, into a 4-shard stream "
          f"in moto behind nginx (TLS, keep-alive)\n")
    print("| agent | records arrived | agent CPU s | CPU s per GiB of log | peak RSS MiB | wall s |"
          + (" CPU vs Fluent Bit | RSS vs Fluent Bit |" if fb_row else ""))
    print("|---|---|---|---|---|---|" + ("---|---|" if fb_row else ""))
    for name, cpu, rss, wall, got in rows:
        line = f"| {name} | {got:,} | {cpu:.2f} | {cpu / (size / GIB):.1f} | {rss:.1f} | {wall:.0f} |"
        if fb_row:
            line += f" {cpu / fb_row[1]:.2f} | {rss / fb_row[2]:.2f} |"
        print(line)


if __name__ == "__main__":
    main()
