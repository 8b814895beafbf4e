#!/usr/bin/env python3
"""Whole-process benchmarks of kinesis-tail (issue 8). Runs the release binary on the
inputs made by gen.py under /usr/bin/time -v and prints one table; also writes
bench/results.md and bench/chart.png. Figures only: nothing here passes or fails.

Usage: run.py BINARY DATA_DIR MOTO_SERVER PYTHON
"""
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchutil import free_port

BIN, DATA, MOTO, PY = sys.argv[1:5]
HERE = os.path.dirname(os.path.abspath(__file__))
ENV = dict(os.environ, AWS_EC2_METADATA_DISABLED="true", AWS_ACCESS_KEY_ID="testing",
           AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1", RUST_LOG="warn")
GIB = 1024 ** 3
MIB = 1024 ** 2


def count_lines(path):
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def config(tmp, pattern, dest, extra="", top=""):
    text = f"""checkpointFile: {tmp}/checkpoints
cloudwatch.emitMetrics: false
{top}flows:
  - filePattern: "{pattern}"
    {dest}
    initialPosition: START_OF_FILE
{extra}"""
    path = os.path.join(tmp, "config.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def timed(args):
    """Runs args under /usr/bin/time -v: (wall s, cpu s, max rss KiB)."""
    out = subprocess.run(["/usr/bin/time", "-v"] + args, env=ENV, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{args} failed:\n{out.stderr[-3000:]}")
    err = out.stderr
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", err).group(1))
    sys_ = float(re.search(r"System time \(seconds\): ([\d.]+)", err).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", err).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    return secs, user + sys_, rss


def once(name, input_path, dest, extra="", top="", runs=3):
    lines = count_lines(input_path)
    size = os.path.getsize(input_path)
    best = None
    for _ in range(runs):
        tmp = tempfile.mkdtemp()
        cfg = config(tmp, input_path, dest, extra, top)
        r = timed([BIN, "run", "--once", "-c", cfg])
        shutil.rmtree(tmp)
        if best is None or r[0] < best[0]:
            best = r
    wall, cpu, rss = best
    return {
        "scenario": name, "lines": lines, "MiB": size / MIB,
        "lines/s": lines / wall, "MiB/s": size / MIB / wall,
        "lines/s per core": lines / cpu if cpu else float("nan"),
        "CPU s/GiB": cpu / (size / GIB), "peak RSS MiB": rss / 1024,
        "wall s": wall, "cpu s": cpu,
    }


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def idle(name, files, measure_s=10, latency_samples=0):
    tmp = tempfile.mkdtemp()
    logs = os.path.join(tmp, "logs")
    os.makedirs(logs)
    for i in range(files):
        with open(os.path.join(logs, f"f{i:04}.log"), "w") as f:
            f.write(f"file {i} first line\n")
    out = os.path.join(tmp, "out.txt")
    cfg = config(tmp, f"{logs}/*.log", f"outputFile: {out}", "    maxBufferAgeMillis: 1000\n")
    p = subprocess.Popen([BIN, "run", "-c", cfg], env=ENV, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.exists(out) and count_lines(out) >= files:
                break
            time.sleep(0.1)
        time.sleep(3)
        c0, t0 = proc_cpu(p.pid), time.time()
        time.sleep(measure_s)
        cpu_share = (proc_cpu(p.pid) - c0) / (time.time() - t0)
        rss = proc_rss(p.pid)
        lat = []
        r = random.Random(5)
        for k in range(latency_samples):
            i = r.randrange(files)
            marker = f"latency probe {k}"
            before = os.path.getsize(out)
            t = time.time()
            with open(os.path.join(logs, f"f{i:04}.log"), "a") as f:
                f.write(marker + "\n")
            while True:
                if os.path.getsize(out) > before:
                    with open(out, "rb") as f:
                        f.seek(before)
                        if marker.encode() in f.read():
                            break
                if time.time() - t > 10:
                    break
                time.sleep(0.002)
            lat.append((time.time() - t) * 1000)
            time.sleep(0.05)
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(tmp)
    row = {"scenario": name, "lines": files, "core share %": cpu_share * 100, "peak RSS MiB": rss}
    if lat:
        lat.sort()
        row["latency p50 ms"] = statistics.median(lat)
        row["latency p99 ms"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return row


def to_moto(name, input_path, extra, shards=4, runs=3):
    """Best of `runs`, each into a fresh moto (a stream that keeps earlier runs' records
    makes the emulator slower)."""
    best = None
    for _ in range(runs):
        row = to_fresh_moto(name, input_path, extra, shards)
        if best is None or row["wall s"] < best["wall s"]:
            best = row
    return best


def to_fresh_moto(name, input_path, extra, shards):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run([PY, "-c", f"""
import boto3, time
k = boto3.client('kinesis', endpoint_url='{endpoint}', region_name='us-east-1')
k.create_stream(StreamName='bench', ShardCount={shards})
while k.describe_stream_summary(StreamName='bench')['StreamDescriptionSummary']['StreamStatus'] != 'ACTIVE':
    time.sleep(0.1)
"""], env=ENV, check=True)
        top = f"kinesis.endpoint: {endpoint}\nkinesis.region: us-east-1\n"
        return once(name, input_path, "kinesisStream: bench", extra, top, runs=1)
    finally:
        moto.terminate()
        moto.wait()


def head(src, dst, n):
    with open(src, "rb") as f, open(dst, "wb") as g:
        for i, line in enumerate(f):
            if i >= n:
                break
            g.write(line)
    return dst


def main():
    apache = os.path.join(DATA, "apache.log")
    small = head(apache, os.path.join(DATA, "apache-500k.log"), 500_000)
    tiny = head(apache, os.path.join(DATA, "apache-30k.log"), 30_000)
    rows = []
    # lenient: the input has IPv6 clients, whose lines the Java agent's pattern drops.
    logtojson = "    dataProcessingOptions:\n      - optionName: LOGTOJSON\n        logFormat: COMBINEDAPACHELOG\n        lenient: true\n"
    steps = [
        lambda: once("raw → /dev/null", apache, "outputFile: /dev/null"),
        lambda: once("LOGTOJSON → /dev/null", apache, "outputFile: /dev/null", logtojson),
        lambda: once("CSVTOJSON → /dev/null", os.path.join(DATA, "csv.log"), "outputFile: /dev/null",
                     "    dataProcessingOptions:\n      - optionName: CSVTOJSON\n        customFieldNames: [id, ts, name, n, status]\n"),
        lambda: to_moto("LOGTOJSON + KPL → moto", small, logtojson + "    aggregation: KPL\n"),
        lambda: to_moto("same, DETERMINISTIC keys", small, logtojson + "    aggregation: KPL\n    partitionKeyOption: DETERMINISTIC\n"),
        lambda: to_moto("raw, no aggregation → moto", tiny, ""),
        lambda: idle("100 idle files", 100),
        lambda: idle("1000 idle files + latency", 1000, latency_samples=100),
    ]
    for step in steps:
        row = step()
        print(json.dumps(row), flush=True)
        rows.append(row)
    cols = ["scenario", "lines", "lines/s", "MiB/s", "lines/s per core", "CPU s/GiB", "peak RSS MiB",
            "core share %", "latency p50 ms", "latency p99 ms"]

    def fmt(v):
        if isinstance(v, float):
            return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"
        return f"{v:,}" if isinstance(v, int) else str(v)
    table = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        table.append("| " + " | ".join(fmt(r[c]) if c in r else "" for c in cols) + " |")
    text = "\n".join(table)
    print(text)
    machine = f"{os.cpu_count()} cores, {os.uname().release}, {time.strftime('%Y-%m-%d')}"
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write(f"Machine: {machine}. Command: `bench/run.sh`.\n\n{text}\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        thr = [r for r in rows if "lines/s" in r]
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
        names = [r["scenario"] for r in thr]
        axes[0].barh(names, [r["lines/s"] / 1000 for r in thr], color="#3b7dd8")
        axes[0].set_xlabel("thousand lines/s (wall)")
        axes[1].barh(names, [r["CPU s/GiB"] for r in thr], color="#d8833b")
        axes[1].set_xlabel("CPU seconds per GiB read")
        axes[2].barh(names, [r["peak RSS MiB"] for r in thr], color="#5aa55a")
        axes[2].set_xlabel("peak RSS (MiB)")
        for ax in axes[1:]:
            ax.set_yticklabels([])
        fig.suptitle(f"kinesis-tail, release build ({machine})")
        fig.tight_layout()
        fig.savefig(os.path.join(HERE, "chart.png"), dpi=90)
    except ImportError:
        print("matplotlib missing: no chart", file=sys.stderr)


if __name__ == "__main__":
    main()
