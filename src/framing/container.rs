//! Container runtime log files (`optionName: CRI`): the CRI format that containerd and
//! CRI-O write, and Docker's `json-file` format, decoded back into the lines the
//! application wrote.
//!
//! # Rules
//!
//! - CRI: `<time> <stream> <tag> <message>`, one space between fields. A tag starting
//!   with `P` marks a partial line: the runtime split a long line and the next `P` or `F`
//!   line of the file continues it. The message is everything after the third space, `\r`
//!   included.
//! - Docker `json-file`: `{"log":"...","stream":"...","time":"..."}`. A `log` that ends
//!   with `\n` is a whole line (the `\n` is not part of the message); one that does not is
//!   partial (Docker splits lines at 16 KiB).
//! - `format: auto` (the default) reads each line as Docker's when it starts with `{`,
//!   else as CRI.
//! - A line in neither format (a truncated or foreign line) is passed on as it is, so that
//!   nothing is lost, and counted ([`Decoder::malformed`]).
//! - The time and stream of a record are those of its first line.
//! - From the file's path, without any API call: `/var/log/containers/<pod>_<namespace>_
//!   <container>-<containerId>.log` gives all four; `/var/log/pods/<namespace>_<pod>_
//!   <podUid>/<container>/<n>.log` gives namespace, pod, container and podUid. The match is
//!   on the last path components, so a host path mounted elsewhere works the same.

use std::borrow::Cow;
use std::path::Path;

use crate::config::ContainerFormat;
use crate::json;

/// One decoded line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decoded<'a> {
    /// The application's bytes (without the runtime's prefix or newline).
    pub msg: Cow<'a, [u8]>,
    /// The runtime split the line; the next line continues it.
    pub partial: bool,
    /// The runtime's timestamp, as written.
    pub time: Cow<'a, [u8]>,
    /// `stdout` or `stderr`.
    pub stream: Cow<'a, [u8]>,
}

/// Decodes the lines of one container log file.
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    format: ContainerFormat,
    /// Lines in neither format, passed on as they were.
    pub malformed: u64,
}

impl Decoder {
    pub(crate) fn new(format: ContainerFormat) -> Self {
        Decoder {
            format,
            malformed: 0,
        }
    }

    /// Decodes `line` (without its `\n`); `None` when it is in neither format.
    pub(crate) fn decode<'a>(&mut self, line: &'a [u8]) -> Option<Decoded<'a>> {
        let docker = match self.format {
            ContainerFormat::Auto => line.first() == Some(&b'{'),
            ContainerFormat::Docker => true,
            ContainerFormat::Cri => false,
        };
        let out = if docker {
            decode_docker(line)
        } else {
            decode_cri(line)
        };
        if out.is_none() {
            self.malformed += 1;
        }
        out
    }
}

/// `output: json`: writes a record as `{"time":..,"stream":..,"log":..,"kubernetes":{..}}`.
#[derive(Debug, Clone)]
pub(crate) struct JsonWrap {
    /// The `,"kubernetes":{...}` member for this file, or empty.
    member: Vec<u8>,
}

impl JsonWrap {
    /// The wrap for records of the file at `path` (`None`: no path known, as in `process`
    /// without `--path`); `kubernetes` adds what the path names.
    pub(crate) fn new(kubernetes: bool, path: Option<&Path>) -> Self {
        let member = path
            .filter(|_| kubernetes)
            .and_then(KubernetesFields::from_path)
            .map(|k| k.json_member())
            .unwrap_or_default();
        JsonWrap { member }
    }

    /// Writes the JSON record of `msg` into `out` (cleared first): at most `max` bytes,
    /// the message cut (on a character boundary) and ended with `terminator` when the
    /// whole object would not fit. `full` is the message's real length (it may be longer
    /// than `msg`). `meta` is the time and stream. Returns true when the message was cut.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write(
        &self,
        out: &mut Vec<u8>,
        meta: (&[u8], &[u8]),
        msg: &[u8],
        full: u64,
        terminator: &[u8],
        max: usize,
        scratch: &mut Vec<u8>,
    ) -> bool {
        let write = |out: &mut Vec<u8>, m: &[u8]| {
            out.clear();
            out.extend_from_slice(b"{\"time\":");
            json::write_str(out, meta.0);
            out.extend_from_slice(b",\"stream\":");
            json::write_str(out, meta.1);
            out.extend_from_slice(b",\"log\":");
            json::write_str(out, m);
            out.extend_from_slice(&self.member);
            out.push(b'}');
        };
        write(out, msg);
        if full <= msg.len() as u64 && out.len() <= max {
            return false;
        }
        // Cut the message by what the object is over, and again while escaping keeps it
        // over (each pass shortens the message by at least one byte).
        let mut keep = msg.len();
        loop {
            let over = out.len().saturating_sub(max).max(1);
            keep = keep.saturating_sub(over);
            super::truncate_into(scratch, msg, terminator, keep + terminator.len());
            write(out, scratch);
            if out.len() <= max || keep == 0 {
                return true;
            }
        }
    }
}

fn decode_cri(line: &[u8]) -> Option<Decoded<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = parts.next().filter(|t| !t.is_empty())?;
    let stream = parts
        .next()
        .filter(|s| *s == b"stdout" || *s == b"stderr")?;
    let tag = parts.next().filter(|t| !t.is_empty())?;
    // An empty message is written as `... F ` by some runtimes and `... F` by others.
    let msg = parts.next().unwrap_or_default();
    Some(Decoded {
        msg: Cow::Borrowed(msg),
        partial: tag[0] == b'P',
        time: Cow::Borrowed(time),
        stream: Cow::Borrowed(stream),
    })
}

fn decode_docker(line: &[u8]) -> Option<Decoded<'_>> {
    decode_docker_layout(line).or_else(|| decode_docker_json(line))
}

/// Docker's own layout, `{"log":"...","stream":"...","time":"..."}` in that order, read
/// without a general JSON parser; `None` for anything else (a JSON parser then reads it).
/// Where it answers, it answers as [`decode_docker_json`] would (tested against it).
fn decode_docker_layout(line: &[u8]) -> Option<Decoded<'_>> {
    let rest = line.strip_prefix(br#"{"log":""#)?;
    let mut msg = Vec::with_capacity(rest.len());
    let mut i = 0;
    loop {
        let j = i + memchr::memchr2(b'"', b'\\', &rest[i..])?;
        let run = &rest[i..j];
        if run.iter().any(|b| *b < 0x20) {
            return None;
        }
        msg.extend_from_slice(run);
        i = j + 1;
        if rest[j] == b'"' {
            break;
        }
        let escaped = *rest.get(i)?;
        i += 1;
        let byte = match escaped {
            b'"' | b'\\' | b'/' => escaped,
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'b' => 0x08,
            b'f' => 0x0C,
            b'u' => {
                let unit = hex4(rest.get(i..i + 4)?)?;
                i += 4;
                let c = if (0xD800..0xDC00).contains(&unit) {
                    if rest.get(i..i + 2)? != b"\\u" {
                        return None;
                    }
                    let low = hex4(rest.get(i + 2..i + 6)?)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return None;
                    }
                    i += 6;
                    char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))?
                } else {
                    char::from_u32(unit)?
                };
                msg.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            _ => return None,
        };
        msg.push(byte);
    }
    let simple = |s: &[u8]| !s.iter().any(|b| *b < 0x20 || *b == b'\\');
    let rest = rest[i..].strip_prefix(br#","stream":""#)?;
    let end = memchr::memchr(b'"', rest)?;
    let stream = &rest[..end];
    let rest = rest[end + 1..].strip_prefix(br#","time":""#)?;
    let end = memchr::memchr(b'"', rest)?;
    let time = &rest[..end];
    if &rest[end + 1..] != b"}" || !simple(stream) || !simple(time) {
        return None;
    }
    std::str::from_utf8(&msg).ok()?;
    std::str::from_utf8(stream).ok()?;
    std::str::from_utf8(time).ok()?;
    let partial = msg.last() != Some(&b'\n');
    if !partial {
        msg.pop();
    }
    Some(Decoded {
        msg: Cow::Owned(msg),
        partial,
        time: Cow::Borrowed(time),
        stream: Cow::Borrowed(stream),
    })
}

/// Four hex digits.
fn hex4(h: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(h).ok()?;
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// Any Docker line, by a JSON parser: fields in any order, others ignored.
fn decode_docker_json(line: &[u8]) -> Option<Decoded<'_>> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        log: Cow<'a, str>,
        #[serde(borrow, default)]
        stream: Cow<'a, str>,
        #[serde(borrow, default)]
        time: Cow<'a, str>,
    }
    let l: Line<'_> = serde_json::from_slice(line).ok()?;
    let mut msg = bytes(l.log);
    let partial = msg.last() != Some(&b'\n');
    if !partial {
        match &mut msg {
            Cow::Borrowed(b) => *b = &b[..b.len() - 1],
            Cow::Owned(v) => {
                v.pop();
            }
        }
    }
    Some(Decoded {
        msg,
        partial,
        time: bytes(l.time),
        stream: bytes(l.stream),
    })
}

fn bytes(c: Cow<'_, str>) -> Cow<'_, [u8]> {
    match c {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// What a container log file's path says about the container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubernetesFields {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name.
    pub container: String,
    /// The container's ID (from `/var/log/containers/` names).
    pub container_id: Option<String>,
    /// The pod's UID (from `/var/log/pods/` paths).
    pub pod_uid: Option<String>,
}

impl KubernetesFields {
    /// Reads the fields from a kubelet log path; `None` when `path` is not one.
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let parent = path.parent()?;
        let dir = parent.file_name().and_then(|d| d.to_str());
        // /var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log (and rotated
        // `<n>.log.<time>` files beside it).
        if let (Some(container), Some(pod_dir)) = (
            dir,
            parent
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|d| d.to_str()),
        ) {
            let n = name.split_once(".log").map(|(n, _)| n);
            if n.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
                let mut it = pod_dir.splitn(3, '_');
                if let (Some(ns), Some(pod), Some(uid)) = (it.next(), it.next(), it.next()) {
                    if [ns, pod, uid, container].iter().all(|s| valid_name(s)) {
                        return Some(KubernetesFields {
                            namespace: ns.to_string(),
                            pod: pod.to_string(),
                            container: container.to_string(),
                            container_id: None,
                            pod_uid: Some(uid.to_string()),
                        });
                    }
                }
            }
        }
        // /var/log/containers/<pod>_<namespace>_<container>-<id>.log
        let stem = name.strip_suffix(".log")?;
        let mut it = stem.splitn(3, '_');
        let (pod, ns, rest) = (it.next()?, it.next()?, it.next()?);
        let (container, id) = rest.rsplit_once('-')?;
        let hex = !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex || ![pod, ns, container].iter().all(|s| valid_name(s)) {
            return None;
        }
        Some(KubernetesFields {
            namespace: ns.to_string(),
            pod: pod.to_string(),
            container: container.to_string(),
            container_id: Some(id.to_string()),
            pod_uid: None,
        })
    }

    /// `,"kubernetes":{...}`, the member the JSON output ends with.
    fn json_member(&self) -> Vec<u8> {
        let mut out = b",\"kubernetes\":{\"namespace\":".to_vec();
        json::write_valid_str(&mut out, &self.namespace);
        out.extend_from_slice(b",\"pod\":");
        json::write_valid_str(&mut out, &self.pod);
        out.extend_from_slice(b",\"container\":");
        json::write_valid_str(&mut out, &self.container);
        if let Some(id) = &self.container_id {
            out.extend_from_slice(b",\"containerId\":");
            json::write_valid_str(&mut out, id);
        }
        if let Some(uid) = &self.pod_uid {
            out.extend_from_slice(b",\"podUid\":");
            json::write_valid_str(&mut out, uid);
        }
        out.push(b'}');
        out
    }
}

/// A Kubernetes object name as the kubelet writes it in paths: not empty, no `_` (the
/// separator) and no `/`.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(['_', '/'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(format: ContainerFormat, line: &[u8]) -> Option<(Vec<u8>, bool, String, String)> {
        let mut d = Decoder::new(format);
        d.decode(line).map(|x| {
            (
                x.msg.into_owned(),
                x.partial,
                String::from_utf8(x.time.into_owned()).unwrap(),
                String::from_utf8(x.stream.into_owned()).unwrap(),
            )
        })
    }

    #[test]
    fn cri_lines() {
        let t = "2026-12-02T10:00:00.123456789Z";
        let f = |l: &str| dec(ContainerFormat::Auto, l.as_bytes());
        assert_eq!(
            f(&format!("{t} stdout F hello world")),
            Some((b"hello world".to_vec(), false, t.into(), "stdout".into()))
        );
        assert_eq!(
            f(&format!("{t} stderr P part")),
            Some((b"part".to_vec(), true, t.into(), "stderr".into()))
        );
        // Spaces inside and at the end of the message are the application's.
        assert_eq!(f(&format!("{t} stdout F  a  b \r")).unwrap().0, b" a  b \r");
        // An empty message, with or without the space after the tag.
        assert_eq!(f(&format!("{t} stdout F ")).unwrap().0, b"");
        assert_eq!(f(&format!("{t} stdout F")).unwrap().0, b"");
        // A tag with more after it (`F:...`) is read by its first letter.
        assert!(!f(&format!("{t} stdout F:x m")).unwrap().1);
        assert_eq!(f(&format!("{t} stdin F m")), None);
        assert_eq!(f("garbage"), None);
        assert_eq!(f(""), None);
        // A CRI line under format: docker is not a Docker line.
        assert_eq!(
            dec(
                ContainerFormat::Docker,
                format!("{t} stdout F m").as_bytes()
            ),
            None
        );
    }

    #[test]
    fn docker_lines() {
        let f = |l: &str| dec(ContainerFormat::Auto, l.as_bytes());
        assert_eq!(
            f(r#"{"log":"hello \"x\"\n","stream":"stdout","time":"2026-12-02T10:00:00.1Z"}"#),
            Some((
                b"hello \"x\"".to_vec(),
                false,
                "2026-12-02T10:00:00.1Z".into(),
                "stdout".into()
            ))
        );
        let (msg, partial, ..) = f(r#"{"log":"first half","stream":"stderr","time":"t"}"#).unwrap();
        assert_eq!((msg.as_slice(), partial), (&b"first half"[..], true));
        // Unicode escapes and non-ASCII text come back as UTF-8.
        assert_eq!(
            f(r#"{"log":"caf\u00e9 ✓\n","stream":"stdout","time":"t"}"#)
                .unwrap()
                .0,
            "café ✓".as_bytes()
        );
        assert_eq!(f(r#"{"stream":"stdout"}"#), None);
        assert_eq!(f(r#"{"log":"cut"#), None);
        // A JSON line under format: cri is not a CRI line.
        assert_eq!(dec(ContainerFormat::Cri, br#"{"log":"x\n"}"#), None);
    }

    /// Docker's layout read by hand answers as the JSON parser does, wherever it answers,
    /// and it answers for every line in Docker's own layout.
    #[test]
    fn docker_layout_agrees_with_the_json_parser() {
        let texts = [
            "plain",
            "",
            "\n",
            "a \"quoted\" \\ back\\slash/ \t tab \r\n",
            "caf\u{e9} \u{1F600} \u{7f}\u{1}",
            "\u{0}\u{1f}",
            "ends with backslash \\",
            "\u{2028}\u{feff}",
            "{\"log\":\"inner\"}",
        ];
        let mut lines: Vec<String> = Vec::new();
        for t in texts {
            for nl in ["", "\n"] {
                let log = serde_json::to_string(&format!("{t}{nl}")).unwrap();
                let line =
                    format!(r#"{{"log":{log},"stream":"stderr","time":"2026-12-02T10:00:00.1Z"}}"#);
                assert!(decode_docker_layout(line.as_bytes()).is_some(), "{line}");
                lines.push(line);
            }
        }
        // Escapes that serde_json does not write but JSON allows, and what is not JSON.
        for raw in [
            r#""\/\u00e9\ud83d\ude00\u0041""#,
            r#""\ud800""#,
            r#""\udc00 x""#,
            r#""\ud800\u0041""#,
            r#""\x""#,
            r#""\u12""#,
            r#""\u12g4""#,
            "\"a\u{1}b\"",
            r#""unterminated"#,
        ] {
            lines.push(format!(r#"{{"log":{raw},"stream":"stdout","time":"t"}}"#));
        }
        for other in [
            r#"{"stream":"stdout","log":"reordered\n","time":"t"}"#,
            r#"{"log":"attrs\n","stream":"stdout","attrs":{"a":"b"},"time":"t"}"#,
            r#"{"log":"x\n","stream":"stdout","time":"t"} "#,
            r#"{"log":"x\n","stream":"std\u006fut","time":"t"}"#,
            r#"{"log":"x\n","stream":"stdout","time":"t"}}"#,
            r#"{"log":"x\n","stream":"stdout"}"#,
        ] {
            lines.push(other.to_string());
        }
        let mut invalid = br#"{"log":"bad "#.to_vec();
        invalid.extend_from_slice(b"\xff\xfe");
        invalid.extend_from_slice(br#"","stream":"stdout","time":"t"}"#);
        let mut all: Vec<Vec<u8>> = lines.into_iter().map(String::into_bytes).collect();
        all.push(invalid);
        let escapes = br#"{"log":"\/\u00e9\ud83d\ude00\u0041","stream":"stdout","time":"t"}"#;
        let d = decode_docker_layout(escapes).expect("Docker's layout");
        assert_eq!(&d.msg[..], "/é😀A".as_bytes());
        assert!(d.partial);
        for line in &all {
            let json = decode_docker_json(line);
            if let Some(fast) = decode_docker_layout(line) {
                assert_eq!(Some(fast), json, "{}", String::from_utf8_lossy(line));
            }
            assert_eq!(
                decode_docker(line),
                json,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn kubernetes_fields_from_paths() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let p = format!("/var/log/containers/web-7d4b9c-x2x_shop_nginx-{id}.log");
        assert_eq!(
            KubernetesFields::from_path(Path::new(&p)),
            Some(KubernetesFields {
                namespace: "shop".into(),
                pod: "web-7d4b9c-x2x".into(),
                container: "nginx".into(),
                container_id: Some(id.into()),
                pod_uid: None,
            })
        );
        // A container name with dashes: the ID is after the last one.
        let p = format!("/mnt/node/containers/p_ns_log-shipper-2-{id}.log");
        let k = KubernetesFields::from_path(Path::new(&p)).unwrap();
        assert_eq!(
            (k.container.as_str(), k.pod.as_str()),
            ("log-shipper-2", "p")
        );
        let p = "/var/log/pods/shop_web-7d4b9c-x2x_5f0c-11aa/nginx/3.log";
        assert_eq!(
            KubernetesFields::from_path(Path::new(p)),
            Some(KubernetesFields {
                namespace: "shop".into(),
                pod: "web-7d4b9c-x2x".into(),
                container: "nginx".into(),
                container_id: None,
                pod_uid: Some("5f0c-11aa".into()),
            })
        );
        // A rotated kubelet file keeps its fields.
        let p = "/var/log/pods/shop_web_5f0c/nginx/0.log.20261202-101500";
        assert_eq!(
            KubernetesFields::from_path(Path::new(p)).unwrap().pod,
            "web"
        );
        for odd in [
            "/var/log/app.log",
            "/var/log/containers/nounderscore.log",
            "/var/log/containers/a_b_c.log",
            "/var/log/containers/a_b_c-notHEX.log",
            "/var/log/containers/a__c-00.log",
            "/var/log/containers/a_b_c-00.txt",
            "/var/log/pods/ns_pod/c/0.log",
            "/var/log/pods/ns_pod_uid/c/x.log",
            "relative.log",
            "",
        ] {
            assert_eq!(KubernetesFields::from_path(Path::new(odd)), None, "{odd}");
        }
    }

    #[test]
    fn json_records_fit_their_limit() {
        let path = "/var/log/containers/p_ns_c-00ff.log";
        let d = JsonWrap::new(true, Some(Path::new(path)));
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        let cut = d.write(
            &mut out,
            (b"t", b"stdout"),
            b"hi \"x\"",
            6,
            b"",
            1000,
            &mut scratch,
        );
        assert!(!cut);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{"time":"t","stream":"stdout","log":"hi \"x\"","kubernetes":{"namespace":"ns","pod":"p","container":"c","containerId":"00ff"}}"#
        );
        // Too long: the message is cut and ends with the terminator, the object stays whole.
        let msg = "é\"".repeat(400);
        for max in [150, 151, 200, 333, 1000] {
            let cut = d.write(
                &mut out,
                (b"t", b"stdout"),
                msg.as_bytes(),
                msg.len() as u64,
                b"...",
                max,
                &mut scratch,
            );
            assert!(cut);
            assert!(out.len() <= max, "{} > {max}", out.len());
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let log = v["log"].as_str().unwrap();
            assert!(log.ends_with("..."), "{log}");
            assert!(msg.starts_with(&log[..log.len() - 3]));
            assert_eq!(v["kubernetes"]["pod"], "p");
        }
        // The message was longer than what the framer kept: cut even if it would fit.
        assert!(d.write(
            &mut out,
            (b"t", b"stdout"),
            b"abc",
            10,
            b"~",
            1000,
            &mut scratch
        ));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).unwrap()["log"],
            "ab~"
        );
    }
}
