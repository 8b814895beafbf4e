//! What Java does differently from Rust, where the Java agent's output depends on it:
//! regular expressions and the decoding of invalid UTF-8.
//!
//! # Regular expressions
//!
//! The Java agent's patterns (`matchPattern`, its own log formats, the CSV `delimiter`)
//! are Java regexes. Most of the syntax is the same; what differs in meaning is rewritten
//! so that a pattern matches what it matches in Java:
//!
//! - `\w`, `\d`, `\s` and their negations are ASCII in Java (without `(?U)`), Unicode in
//!   the `regex` crate: they become explicit ASCII classes, inside classes too.
//! - `.` stops at every Java line terminator (`\n`, `\r`, U+0085, U+2028, U+2029), not
//!   only at `\n`.
//! - `\Q...\E` quotes literally; `\h` is a horizontal space; `\z`/`\Z` end the input.
//!
//! What the `regex` crate cannot do (look-around, back-references, possessive and atomic
//! groups) is left as written, so compiling it fails with the crate's message, which the
//! configuration reports.

/// Decodes `bytes` as Java's `new String(bytes, UTF_8)` does (JDK 9 and later): each
/// malformed sequence becomes one U+FFFD, where a sequence is as long as Java's decoder
/// reads it (an encoded surrogate is one malformed sequence of three bytes; a truncated
/// sequence at the very end is one U+FFFD). Valid UTF-8 is borrowed as it is.
pub fn utf8_lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return std::borrow::Cow::Borrowed(s);
    }
    const REPL: char = '\u{FFFD}';
    let cont = |b: u8| b & 0xC0 == 0x80;
    let mut out = String::with_capacity(bytes.len() + 8);
    let src = bytes;
    let sl = src.len();
    let mut sp = 0;
    while sp < sl {
        // Runs of valid UTF-8 are copied at once.
        match std::str::from_utf8(&src[sp..]) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.push_str(std::str::from_utf8(&src[sp..sp + good]).unwrap_or_default());
                sp += good;
            }
        }
        let b1 = src[sp];
        sp += 1;
        if (0xC2..=0xDF).contains(&b1) {
            // Two bytes; the second is not a continuation (else it was valid).
            out.push(REPL);
        } else if (0xE0..=0xEF).contains(&b1) {
            if sp + 1 < sl {
                let (b2, b3) = (src[sp], src[sp + 1]);
                let malformed = (b1 == 0xE0 && b2 & 0xE0 == 0x80) || !cont(b2) || !cont(b3);
                out.push(REPL);
                if malformed {
                    sp += usize::from(!((b1 == 0xE0 && b2 & 0xE0 == 0x80) || !cont(b2)));
                } else {
                    // A well-formed encoding of a surrogate: one U+FFFD for all three.
                    sp += 2;
                }
                continue;
            }
            out.push(REPL);
            if sp < sl && ((b1 == 0xE0 && src[sp] & 0xE0 == 0x80) || !cont(src[sp])) {
                continue;
            }
            break;
        } else if (0xF0..=0xF7).contains(&b1) {
            if sp + 2 < sl {
                let b2 = src[sp];
                out.push(REPL);
                let one = b1 > 0xF4
                    || (b1 == 0xF0 && !(0x90..=0xBF).contains(&b2))
                    || (b1 == 0xF4 && b2 & 0xF0 != 0x80)
                    || !cont(b2);
                sp += if one {
                    0
                } else if !cont(src[sp + 1]) {
                    1
                } else {
                    2
                };
                continue;
            }
            out.push(REPL);
            if b1 > 0xF4
                || (sp < sl
                    && ((b1 == 0xF0 && !(0x90..=0xBF).contains(&src[sp]))
                        || (b1 == 0xF4 && src[sp] & 0xF0 != 0x80)
                        || !cont(src[sp])))
            {
                continue;
            }
            sp += 1;
            if sp < sl && !cont(src[sp]) {
                continue;
            }
            break;
        } else {
            out.push(REPL);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `.` in Java: anything but a line terminator.
const DOT: &str = r"[^\n\r\x{85}\x{2028}\x{2029}]";
const WORD: &str = "0-9A-Za-z_";
const DIGIT: &str = "0-9";
const SPACE: &str = r"\t\n\x0B\x0C\r ";
const HSPACE: &str = r" \t\x{A0}\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}";

/// Rewrites the Java pattern `java` for the `regex` crate.
pub(crate) fn translate(java: &str) -> String {
    let mut out = String::with_capacity(java.len() + 16);
    let mut chars = java.chars().peekable();
    // Depth of character classes (Java classes nest).
    let mut class = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\');
                    break;
                };
                match e {
                    'w' | 'd' | 's' | 'h' => {
                        let set = match e {
                            'w' => WORD,
                            'd' => DIGIT,
                            's' => SPACE,
                            _ => HSPACE,
                        };
                        if class > 0 {
                            out.push_str(set);
                        } else {
                            out.push('[');
                            out.push_str(set);
                            out.push(']');
                        }
                    }
                    'W' | 'D' | 'S' | 'H' => {
                        let set = match e {
                            'W' => WORD,
                            'D' => DIGIT,
                            'S' => SPACE,
                            _ => HSPACE,
                        };
                        // A nested negated class is a union member inside a class.
                        out.push_str("[^");
                        out.push_str(set);
                        out.push(']');
                    }
                    'Q' => {
                        let mut lit = String::new();
                        loop {
                            match chars.next() {
                                None => break,
                                Some('\\') if chars.peek() == Some(&'E') => {
                                    chars.next();
                                    break;
                                }
                                Some(ch) => lit.push(ch),
                            }
                        }
                        out.push_str(&regex::escape(&lit));
                    }
                    'Z' => out.push_str(r"(?:\n?\z)"),
                    'z' => out.push_str(r"\z"),
                    _ => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' => {
                class += 1;
                out.push('[');
                // A leading `^` and a leading `]` are part of the class syntax.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str(r"\]");
                    chars.next();
                }
            }
            ']' if class > 0 => {
                class -= 1;
                out.push(']');
            }
            // `~~` and `--` are set operations in the `regex` crate, literals in Java.
            '~' if class > 0 => out.push_str(r"\~"),
            '-' if class > 0 && chars.peek() == Some(&'-') => out.push_str(r"\-"),
            '.' if class == 0 => out.push_str(DOT),
            _ => out.push(c),
        }
    }
    out
}

/// Compiles the Java pattern `java`.
pub(crate) fn compile(java: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&translate(java))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(p: &str, s: &str) -> bool {
        regex::Regex::new(&format!("^(?:{})$", translate(p)))
            .unwrap()
            .is_match(s)
    }

    #[test]
    fn classes_are_ascii() {
        assert!(full(r"\w+", "abc_09"));
        assert!(!full(r"\w+", "é"));
        assert!(!full(r"\d", "٣"));
        assert!(full(r"\S+", "é"));
        assert!(!full(r"\s", "\u{a0}"));
        assert!(full(r"[\w.]+", "a.b"));
        assert!(!full(r"[\w.]+", "aé"));
        assert!(full(r"[^\s]+", "é"));
        assert!(full(r"[\S]+", "é"));
        assert!(full(r"[\W]", "é"));
        assert!(full(r"[+\-]\d{4}", "-0400"));
    }

    #[test]
    fn dot_stops_at_java_line_terminators() {
        assert!(full(".*", "abc é"));
        for t in ["\r", "\n", "\u{85}", "\u{2028}", "\u{2029}"] {
            assert!(!full(".*", &format!("a{t}b")), "{t:?}");
        }
        assert!(full("[.]", "."));
        assert!(!full("[.]", "x"));
    }

    #[test]
    fn quoting() {
        assert!(full(r"\Q.*\E", ".*"));
        assert!(!full(r"\Q.*\E", "ab"));
        assert!(full(r"a\Q(b\Ec", "a(bc"));
        assert!(full(r"\|", "|"));
    }
}

#[cfg(test)]
mod decoding_tests {
    use super::utf8_lossy;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `tests/java-golden/utf8/new-string.txt`: byte strings (hex) and what
    /// `new String(bytes, UTF_8).getBytes(UTF_8)` gave on JDK 17.
    #[test]
    fn decodes_invalid_utf8_as_java_does() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/java-golden/utf8/new-string.txt"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut n = 0;
        for line in text.lines() {
            let (input, want) = line.split_once(' ').unwrap();
            let bytes = hex(input);
            let got = utf8_lossy(&bytes);
            assert_eq!(got.as_bytes(), &hex(want)[..], "input {input}");
            n += 1;
        }
        assert!(n >= 3000);
    }
}
