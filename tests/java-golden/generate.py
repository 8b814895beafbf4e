#!/usr/bin/env python3
"""Writes the inputs of the Java-agent golden files: tests/java-golden/cases/<group>.jsonl.

Each line is one case: {"options": [dataProcessingOptions...], "in": text} (or "in_b64"
for bytes that are not UTF-8). "in" is the record as the Java agent's splitter hands it
to the processors: the line (or the lines of a multi-line record) with its final "\n".
The driver (see README.md) adds what the Java agent's classes made of each case.
Deterministic: the same seed gives the same files.
"""
import base64
import json
import os
import random
import sys

R = random.Random(20261202)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")

UNICODE = ["é", "ü", "日本", "😀", "\u00a0", "\u2028", "\u0085", "Ω", "\ufeff", "\u200b"]
ODD = ["", " ", "  ", "\t", "\r", "\"", "\\", "\\\"", "'", "/", "\\n", "<", ">", "&", "\x00", "\x01", "\x1f", "\x7f", "-", "--", "[", "]", "{", "}", ",", ";", "|", ":"]


def pick(xs):
    return xs[R.randrange(len(xs))]


def word(n=None):
    n = n if n is not None else R.randint(0, 8)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
    return "".join(pick(alphabet) for _ in range(n))


def noise():
    k = R.random()
    if k < 0.5:
        return word()
    if k < 0.8:
        return pick(ODD)
    return pick(UNICODE)


def field():
    return "".join(noise() for _ in range(R.randint(0, 3)))


def case(options, data):
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return {"options": options, "in_b64": base64.b64encode(data).decode()}
    return {"options": options, "in": data}


def ip():
    return ".".join(str(R.randint(0, 255)) for _ in range(4))


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def httpdate():
    return "%02d/%s/%d:%02d:%02d:%02d %s%04d" % (
        R.randint(1, 28), pick(MONTHS), R.randint(1990, 2030), R.randint(0, 23),
        R.randint(0, 59), R.randint(0, 59), pick("+-"), R.choice([0, 100, 530, 1000]))


def host():
    return pick([ip(), "www.example.com", "lj1036.inktomisearch.com", "::1",
                 "2001:db8::1", "host-1", "a_b", "x.", "-", "é.example", "h:8080"])


def user():
    return pick(["-", "-", "frank", "user@example.com", "a.b_c-d", "日本", "x y", ""])


def request():
    return pick(["GET / HTTP/1.1", "GET /index.html?q=1&r=\"x\" HTTP/1.0",
                 "POST /api/v1/items HTTP/2.0", "-", "", "GET /a\\\"b HTTP/1.1",
                 "GET /é HTTP/1.1", "\\x16\\x03\\x01", "GET /" + field() + " HTTP/1.1"])


def number():
    return pick(["200", "404", "-", "0", "+1", "-5", "12a", "", "1" * 20, "٣"])


def quoted_value():
    return pick(["-", "http://example.com/", "Mozilla/5.0 (X11; Linux x86_64)",
                 "", "a\\\"b", "curl/8.0", field()])


def apache_line(combined):
    if R.random() < 0.6:
        # Well-formed, so that most lines match and their fields are compared.
        parts = [pick([ip(), "www.example.com", "lj1036.inktomisearch.com", "host-1"]),
                 pick(["-", "frank", "a.b_c-d"]), pick(["-", "frank"]), "[" + httpdate() + "]",
                 "\"" + pick(["GET / HTTP/1.1", "POST /api/v1/items?x=1 HTTP/2.0", "GET /é HTTP/1.1",
                             "GET /" + word() + " HTTP/1.1", "-"]) + "\"",
                 pick(["200", "404", "-", "+1", "-5"]), pick(["0", "10450", "-"])]
        if combined or R.random() < 0.3:
            parts += ["\"" + pick(["-", "http://example.com/", "a b"]) + "\"",
                      "\"" + pick(["-", "Mozilla/5.0 (X11; Linux x86_64)", "curl/8.0", "日本"]) + "\""]
    else:
        parts = [host(), user(), user(), "[" + pick([httpdate(), httpdate(), "bad date", ""]) + "]",
                 "\"" + request() + "\"", number(), number()]
        if combined or R.random() < 0.3:
            parts += ["\"" + quoted_value() + "\"", "\"" + quoted_value() + "\""]
    line = " ".join(parts)
    k = R.random()
    if k < 0.1:
        line += " \"extra\" trailing"
    elif k < 0.15:
        line += "\r"
    elif k < 0.2:
        line = line.replace(" ", "  ", 1)
    elif k < 0.25:
        line = "<34>" + line
    elif k < 0.28:
        line = line[: R.randint(0, len(line))]
    return line


def error_line():
    ts = "%s %s %02d %02d:%02d:%02d%s %d" % (
        pick(DAYS), pick(MONTHS), R.randint(1, 28), R.randint(0, 23), R.randint(0, 59),
        R.randint(0, 59), pick(["", ".902022"]), R.randint(2000, 2030))
    mod = pick(["core:error", "core:error", "error", "ssl:warn", "proxy_fcgi:error", "mpm-event:notice"])
    pid = pick(["[pid 35708:tid 4328636416] ", "[pid 35708] ", "[pid 35708] ", "", "[pid x] "])
    client = pick(["[client 72.15.99.187] ", "[client 72.15.99.187] ", "[client 72.15.99.187:12345] ",
                   "[client ::1:5000] ", "", "[client host.example.com] "])
    msg = pick(["File does not exist: /usr/local/apache2/htdocs/favicon.ico", "",
                "AH00124: Request exceeded the limit", field()])
    line = "[%s] [%s] %s%s%s" % (ts, mod, pid, client, msg)
    if R.random() < 0.1:
        line = line[: R.randint(0, len(line))]
    if R.random() < 0.05:
        line += "\r"
    return line


def syslog_ts(rfc3339):
    if rfc3339:
        return "%04d-%02d-%02dT%02d:%02d:%02d%s%s" % (
            R.randint(2000, 2030), R.randint(1, 12), R.randint(1, 28), R.randint(0, 23),
            R.randint(0, 59), R.randint(0, 59), pick(["", ".123", ".123456"]),
            pick(["Z", "+02:00", "-0500", "z", ""]))
    return "%s %s %s:%02d:%02d" % (
        pick(MONTHS + ["March", "Sept"]), pick(["%2d" % R.randint(1, 9), str(R.randint(10, 31)), "01"]),
        pick(["%02d" % R.randint(0, 23), str(R.randint(0, 9))]), R.randint(0, 59), R.randint(0, 59))


def syslog_line(rfc3339):
    prog = pick(["sshd", "rcd", "CRON", "kernel", "systemd-logind", "app/worker", "a.b",
                 "(sd-pam)", "snort", "x%y"])
    pid = pick(["[308]", "", "[0]", "[abc]", "[1234567]"])
    fac = pick(["", "", "<0.3> "])
    msg = pick(["Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds) ",
                "Accepted publickey for root from 10.0.0.1 port 22 ssh2", "", field(),
                "日本語のメッセージ", "tab\there"])
    hostname = pick(["server2", "host.example.com", "server2", "-", "h_1", "é"])
    sep = pick([": ", ": ", ": ", ": ", ":", " "])
    line = "%s %s%s %s%s%s%s" % (syslog_ts(rfc3339), fac, hostname, prog, pid, sep, msg)
    k = R.random()
    if k < 0.05:
        line += "\r"
    elif k < 0.1:
        line = "<13>" + line
    elif k < 0.15:
        line = line[: R.randint(0, len(line))]
    return line


def csv_line(delim):
    cols = []
    for _ in range(R.randint(0, 7)):
        k = R.random()
        if k < 0.15:
            cols.append("")
        elif k < 0.3:
            cols.append("\"" + field().replace("\"", "\"\"") + "\"")
        elif k < 0.4:
            cols.append(" " + word() + " ")
        else:
            cols.append(field())
    line = delim.join(cols)
    if R.random() < 0.1:
        line += "\r"
    if R.random() < 0.1:
        line += delim * R.randint(1, 3)
    return line


def multiline_record():
    lines = []
    for _ in range(R.randint(1, 6)):
        lines.append(pick(["", " ", "  indented", "\tat com.example.Foo(Foo.java:1)",
                           "{", "}", "  \"a\": 1,", "trailing   ", "\r", "x\r", field(),
                           pick(UNICODE)]))
    return "\n".join(lines) + pick(["\n", "\n", "\n\n", "\n \n"])


def invalid_utf8():
    return pick([b"\xff", b"\xc3", b"\xe6\x97", b"\xed\xa0\x80", b"\xf0\x9f\x98",
                 b"\xc0\xaf", b"\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xfe\xfe"])


def with_bad_bytes(text):
    b = text.encode()
    i = R.randint(0, len(b))
    return b[:i] + invalid_utf8() + b[i:]


def emit(group, cases):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, group + ".jsonl"), "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    print(f"{group}: {len(cases)} cases", file=sys.stderr)


def logtojson_cases():
    out = []
    formats = {
        "COMMONAPACHELOG": lambda: apache_line(False),
        "COMBINEDAPACHELOG": lambda: apache_line(True),
        "APACHEERRORLOG": error_line,
        "SYSLOG": lambda: syslog_line(False),
        "RFC3339SYSLOG": lambda: syslog_line(True),
    }
    for fmt, gen in formats.items():
        for _ in range(120):
            line = gen()
            data = with_bad_bytes(line) if R.random() < 0.04 else line
            out.append(case([{"optionName": "LOGTOJSON", "logFormat": fmt}], data + ("\n" if isinstance(data, str) else b"\n")))
    # Custom names over the default patterns, and custom patterns.
    names7 = ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]
    for _ in range(40):
        out.append(case([{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG",
                          "customFieldNames": names7}], apache_line(False) + "\n"))
    patterns = [
        ("^([\\d.]+) (\\S+) (\\S+) \\[([\\w:/]+\\s[+\\-]\\d{4})\\] \"(.+?)\" (\\d{3})", 6),
        ("(\\w+)=(\\w*)", 2),
        ("(\\w+) (.*)", 2),
        ("(?<level>[A-Z]+) (?<msg>.*)", 2),
        ("(\\d+)-(\\d+)?", 2),
        ("([^,]*),([^,]*)", 2),
        ("(\\S+)\\s+(\\S+)", 2),
        ("(a)|(b)", 2),
        ("\\[(\\w+)\\] (.*)", 2),
        ("(.*)", 1),
    ]
    # For each pattern, lines written to match it (mostly), with odd content.
    fitting = {
        0: lambda: apache_line(False),
        1: lambda: "%s=%s" % (word(R.randint(1, 6)), pick([word(), "", "x y"])),
        2: lambda: "%s %s" % (word(R.randint(1, 6)), field()),
        3: lambda: "%s %s" % (pick(["INFO", "WARN", "ERROR", "info", "É"]), field()),
        4: lambda: "%d-%s" % (R.randint(0, 99), pick(["", "7", "x", "12"])),
        5: lambda: "%s,%s" % (field().replace(",", ""), field().replace(",", "")),
        6: lambda: "%s%s%s" % (word(R.randint(1, 5)), pick([" ", "  ", "\t", " \t "]), word(R.randint(1, 5))),
        7: lambda: pick(["a", "b", "ab", "", " "]),
        8: lambda: "[%s] %s" % (word(R.randint(1, 5)), field()),
        9: field,
    }
    for k, (pat, n) in enumerate(patterns):
        names = ["f%d" % i for i in range(1, n + 1)]
        for _ in range(15):
            line = fitting[k]() if R.random() < 0.8 else field()
            out.append(case([{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG",
                              "matchPattern": pat, "customFieldNames": names}], line + "\n"))
    # Custom patterns under a syslog format: no `-` to null there.
    for _ in range(15):
        out.append(case([{"optionName": "LOGTOJSON", "logFormat": "SYSLOG",
                          "matchPattern": "(\\S+) (\\S+)", "customFieldNames": ["a", "b"]}],
                        "%s %s\n" % (pick(["-", "x", word(3)]), pick(["-", "y", word(2)]))))
    # Long lines.
    for fmt, gen in (("COMBINEDAPACHELOG", lambda: apache_line(True)), ("SYSLOG", lambda: syslog_line(False))):
        for _ in range(4):
            line = gen()
            line = line + " " + "".join(pick("abcdé日 \"\\\t") for _ in range(R.randint(3000, 9000)))
            out.append(case([{"optionName": "LOGTOJSON", "logFormat": fmt}], line + "\n"))
    # Pretty printing, and names that need escaping.
    for _ in range(20):
        out.append(case([{"optionName": "LOGTOJSON", "logFormat": "SYSLOG",
                          "jsonFormat": "PRETTYPRINT"}], syslog_line(False) + "\n"))
    for _ in range(10):
        out.append(case([{"optionName": "LOGTOJSON", "logFormat": "SYSLOG",
                          "customFieldNames": ["t\"s", "h\\n", "é", "", "a b"]}],
                        syslog_line(False) + "\n"))
    return out


def csv_cases():
    out = []
    delims = [(",", ","), ("\\t", "\t"), ("\t", "\t"), (";", ";"), ("\\|", "|"), ("|", "|"),
              (" ", " "), ("::", "::"), (",\\s*", ", "), (".", ".")]
    for cfg, real in delims:
        names = ["a", "b", "c", "d", "e"][: R.randint(1, 5)]
        for _ in range(30):
            line = csv_line(real)
            data = with_bad_bytes(line) if R.random() < 0.05 else line
            opt = {"optionName": "CSVTOJSON", "customFieldNames": names}
            if cfg != "," or R.random() < 0.5:
                opt["delimiter"] = cfg
            out.append(case([opt], data + ("\n" if isinstance(data, str) else b"\n")))
    for _ in range(20):
        out.append(case([{"optionName": "CSVTOJSON", "customFieldNames": ["x", "y"],
                          "jsonFormat": "PRETTYPRINT"}], csv_line(",") + "\n"))
    for _ in range(4):
        line = ",".join("".join(pick("ab,é\"\\ \t") for _ in range(R.randint(1000, 9000))) for _ in range(3))
        out.append(case([{"optionName": "CSVTOJSON", "customFieldNames": ["x", "y", "z"]}], line + "\n"))
    # Multi-line records (as multiLineStartPattern gives them).
    for _ in range(20):
        out.append(case([{"optionName": "CSVTOJSON", "customFieldNames": ["x", "y", "z"]}],
                        multiline_record()))
    return out


def singleline_cases():
    out = []
    for opts in ([], ["NO_TRIM"], ["ESCAPE_NEW_LINE"], ["NO_TRIM", "ESCAPE_NEW_LINE"]):
        for _ in range(2):
            rec = "\n".join("  " + "y" * R.randint(500, 3000) + "  " for _ in range(4)) + "\n"
            opt = {"optionName": "SINGLELINE", "parseOptions": opts}
            out.append(case([opt], rec))
        for _ in range(60):
            rec = multiline_record()
            data = with_bad_bytes(rec) if R.random() < 0.05 else rec
            opt = {"optionName": "SINGLELINE"}
            if opts or R.random() < 0.5:
                opt["parseOptions"] = opts
            out.append(case([opt], data))
    return out


METADATA = [
    {"key": "value", "foo": {"bar": "bas"}},
    "a string",
    42,
    -7,
    3.5,
    1e10,
    0.0001,
    True,
    None,
    [1, "two", {"three": 3}],
    {"z": 1, "a": 2, "m": [None, False]},
    {"quote\"": "back\\slash", "uni": "é😀", "ctl": "\u0001\t"},
    {},
    [],
    12345678901234567890,
]


def metadata_cases():
    out = []
    for md in METADATA:
        for _ in range(8):
            opt = {"optionName": "ADDMETADATA", "metadata": md}
            k = R.random()
            if k < 0.2:
                opt["timestamp"] = "true"
            elif k < 0.3:
                opt["timestamp"] = "false"
            elif k < 0.35:
                opt["timestamp"] = True
            elif k < 0.4:
                opt["jsonFormat"] = "PRETTYPRINT"
            line = pick([field(), apache_line(True), syslog_line(False), "{\"already\":\"json\"}"])
            out.append(case([opt], line + "\n"))
    for _ in range(4):
        line = "".join(pick("ab é\"\\\t\x01") for _ in range(R.randint(3000, 9000)))
        out.append(case([{"optionName": "ADDMETADATA", "metadata": {"k": "v"}}], line + "\n"))
    # No metadata key at all.
    for _ in range(5):
        out.append(case([{"optionName": "ADDMETADATA"}], field() + "\n"))
    return out


def brackets_cases():
    out = []
    for _ in range(3):
        out.append(case([{"optionName": "ADDBRACKETS"}], "x" * R.randint(3000, 9000) + "\n"))
    for _ in range(40):
        rec = pick([field() + "\n", multiline_record(), "\"k\":\"v\"\n"])
        data = with_bad_bytes(rec) if R.random() < 0.1 else rec
        out.append(case([{"optionName": "ADDBRACKETS"}], data))
    return out


def chain_cases():
    out = []
    md = {"optionName": "ADDMETADATA", "metadata": {"host": "h1"}}
    chains = [
        ([{"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG"}, md], lambda: apache_line(True) + "\n"),
        ([{"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}, md], lambda: syslog_line(False) + "\n"),
        ([{"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"]}, md], lambda: csv_line(",") + "\n"),
        ([{"optionName": "SINGLELINE"}, md], multiline_record),
        ([{"optionName": "ADDBRACKETS"}, md], lambda: field() + "\n"),
        ([md, md], lambda: field() + "\n"),
        ([{"optionName": "SINGLELINE"}, {"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}],
         lambda: syslog_line(False) + "\n" + pick(["", "  continued\n"])),
        ([{"optionName": "SINGLELINE", "parseOptions": ["ESCAPE_NEW_LINE"]},
          {"optionName": "CSVTOJSON", "customFieldNames": ["a", "b", "c"]}], multiline_record),
        ([{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "jsonFormat": "PRETTYPRINT"},
          {"optionName": "SINGLELINE"}], lambda: syslog_line(False) + "\n"),
        ([{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "jsonFormat": "PRETTYPRINT"}, md],
         lambda: syslog_line(False) + "\n"),
        ([{"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"]}, {"optionName": "ADDBRACKETS"}],
         lambda: csv_line(",") + "\n"),
        ([{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG"},
          {"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}], lambda: apache_line(False) + "\n"),
        ([{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG"}, md], lambda: apache_line(False) + "\n"),
        ([{"optionName": "LOGTOJSON", "logFormat": "APACHEERRORLOG"}, md], lambda: error_line() + "\n"),
        ([{"optionName": "LOGTOJSON", "logFormat": "RFC3339SYSLOG"}, md], lambda: syslog_line(True) + "\n"),
        ([{"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"], "jsonFormat": "PRETTYPRINT"},
          {"optionName": "ADDMETADATA", "metadata": {"n": [1, {"x": None}]}, "jsonFormat": "PRETTYPRINT"}],
         lambda: csv_line(",") + "\n"),
        ([{"optionName": "SINGLELINE", "parseOptions": ["NO_TRIM"]}, {"optionName": "ADDBRACKETS"},
          {"optionName": "ADDMETADATA", "metadata": "m", "timestamp": "true"}], multiline_record),
    ]
    for options, gen in chains:
        for _ in range(20):
            out.append(case(options, gen()))
    return out


def config_cases():
    """Processor configurations, some of which the Java agent refuses."""
    line = "Mar 12 12:00:08 server2 rcd[308]: hello\n"
    opts = [
        {"optionName": "LOGTOJSON"},
        {"optionName": "LOGTOJSON", "logFormat": "NOSUCHFORMAT"},
        {"optionName": "LOGTOJSON", "logFormat": "syslog"},
        {"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "customFieldNames": ["a", "b"]},
        {"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "matchPattern": "(\\w+)"},
        {"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "matchPattern": "(\\w+) (.*)", "customFieldNames": ["only"]},
        {"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "jsonFormat": "pretty"},
        {"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "jsonFormat": "compact"},
        {"optionName": "CSVTOJSON"},
        {"optionName": "CSVTOJSON", "customFieldNames": []},
        {"optionName": "CSVTOJSON", "customFieldNames": ["a"], "delimiter": ""},
        {"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"], "delimiter": "("},
        {"optionName": "SINGLELINE", "parseOptions": ["BOGUS"]},
        {"optionName": "SINGLELINE", "parseOptions": "NO_TRIM"},
        {"optionName": "ADDMETADATA", "metadata": "m", "timestamp": True},
        {"optionName": "ADDMETADATA", "metadata": "m", "timestamp": "yes"},
        {"optionName": "ADDMETADATA", "metadata": "m", "timestamp": "TRUE"},
        {"optionName": "NOSUCHOPTION"},
        {"optionName": "singleline"},
        {},
    ]
    return [case([o], line) for o in opts]


def main():
    emit("logtojson", logtojson_cases())
    emit("csvtojson", csv_cases())
    emit("singleline", singleline_cases())
    emit("addmetadata", metadata_cases())
    emit("addbrackets", brackets_cases())
    emit("chains", chain_cases())
    emit("options", config_cases())


if __name__ == "__main__":
    main()
