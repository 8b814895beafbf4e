//! `SINGLELINE`: a multi-line record → one line.
//!
//! As the Java agent: the record is split on `\n` (trailing empty lines dropped, as Java's
//! `String.split` does), each line is trimmed of leading and trailing bytes up to the
//! space (Java `String.trim`, which also removes `\r` and tabs) unless `NO_TRIM`, and the
//! lines are joined with nothing, or under `ESCAPE_NEW_LINE` with the three characters
//! `\\n` (two backslashes and `n`: the Java agent's separator is the Java literal
//! `"\\\\n"`). The chain adds the record's newline. Bytes are copied as they are
//! (the Java agent decodes and re-encodes, replacing invalid UTF-8 with U+FFFD).

/// One `SINGLELINE` step.
#[derive(Debug)]
pub(crate) struct SingleLine {
    pub(crate) no_trim: bool,
    pub(crate) escape_new_line: bool,
}

impl SingleLine {
    /// Joins the lines of `src` into `dst` (cleared first).
    pub(crate) fn apply(&self, src: &[u8], dst: &mut Vec<u8>) {
        dst.clear();
        let mut src = src;
        while let Some(rest) = src.strip_suffix(b"\n") {
            src = rest;
        }
        for (i, line) in src.split(|b| *b == b'\n').enumerate() {
            if i > 0 && self.escape_new_line {
                dst.extend_from_slice(b"\\\\n");
            }
            dst.extend_from_slice(if self.no_trim {
                line
            } else {
                crate::framing::java_trim(line)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(no_trim: bool, escape_new_line: bool, src: &str) -> String {
        let mut dst = Vec::new();
        SingleLine {
            no_trim,
            escape_new_line,
        }
        .apply(src.as_bytes(), &mut dst);
        String::from_utf8(dst).unwrap()
    }

    #[test]
    fn joins_lines() {
        let src = "{\n  \"a\": 1,\r\n\t\"b\": 2\n}\n\n";
        assert_eq!(run(false, false, src), r#"{"a": 1,"b": 2}"#);
        assert_eq!(run(false, true, src), r#"{\\n"a": 1,\\n"b": 2\\n}"#);
        assert_eq!(run(true, false, src), "{  \"a\": 1,\r\t\"b\": 2}");
        assert_eq!(run(true, true, "a \n b"), r"a \\n b");
        assert_eq!(run(false, false, ""), "");
    }
}
