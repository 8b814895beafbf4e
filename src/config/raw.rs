//! First stage of loading: text → a [`serde_yaml::Value`] tree that mirrors the file.
//!
//! YAML is read with `serde_yaml`. A document that looks like JSON (its first non-blank
//! characters are `{`, `//` or `/*`) is a Java-agent `agent.json`: its `//` and `/* */`
//! comments are blanked out first (outside strings only, every comment character replaced
//! by a space and newlines kept, so lines and columns in messages still point into the
//! file as written), then it is read with `serde_json`, falling back to the more lenient
//! YAML reader (trailing commas, tabs) before giving up.
//!
//! This module knows nothing about keys and their meaning; that is `validate.rs`.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::error::ConfigError;

/// One parsed file.
#[derive(Debug)]
pub(crate) struct Doc {
    /// The file, for messages.
    pub path: PathBuf,
    /// The text as parsed (comments blanked): used to find where a key is written.
    pub text: String,
    /// The document.
    pub value: Value,
}

fn error(path: &Path, location: Option<(usize, usize)>, message: String) -> ConfigError {
    ConfigError {
        file: path.to_path_buf(),
        location,
        flow: None,
        key: None,
        message,
    }
}

/// Turns file bytes into text, pointing at the first byte that is not UTF-8.
pub(crate) fn decode(bytes: Vec<u8>, path: &Path) -> Result<String, ConfigError> {
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // `good` is valid UTF-8 by construction.
        let good = std::str::from_utf8(good).unwrap_or_default();
        error(
            path,
            Some(line_col(good, good.len())),
            "the file is not UTF-8 text".to_string(),
        )
    })
}

/// 1-based line and column (in characters) of byte offset `at` of `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Whether `text` is a JSON document (possibly starting with a comment).
fn looks_like_json(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('{') || t.starts_with("//") || t.starts_with("/*")
}

/// Blanks out `//` and `/* */` comments outside JSON strings, keeping every newline and
/// the character count of every line. Fails on an unterminated `/*`.
pub(crate) fn strip_json_comments(text: &str) -> Result<String, (usize, usize)> {
    #[derive(PartialEq)]
    enum State {
        Code,
        Str,
        StrEscape,
        Line,
        Block,
    }
    let mut out = String::with_capacity(text.len());
    let mut state = State::Code;
    let mut block_start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match state {
            State::Code => match c {
                '"' => {
                    state = State::Str;
                    out.push(c);
                }
                '/' if matches!(chars.peek(), Some((_, '/'))) => {
                    chars.next();
                    out.push_str("  ");
                    state = State::Line;
                }
                '/' if matches!(chars.peek(), Some((_, '*'))) => {
                    chars.next();
                    out.push_str("  ");
                    block_start = i;
                    state = State::Block;
                }
                _ => out.push(c),
            },
            State::Str => {
                match c {
                    '\\' => state = State::StrEscape,
                    '"' => state = State::Code,
                    // A raw newline ends a (malformed) string so one stray quote cannot
                    // turn the comments of the rest of the file into string content.
                    '\n' => state = State::Code,
                    _ => {}
                }
                out.push(c);
            }
            State::StrEscape => {
                state = State::Str;
                out.push(c);
            }
            State::Line => {
                if c == '\n' {
                    out.push('\n');
                    state = State::Code;
                } else {
                    out.push(' ');
                }
            }
            State::Block => {
                if c == '*' && matches!(chars.peek(), Some((_, '/'))) {
                    chars.next();
                    out.push_str("  ");
                    state = State::Code;
                } else if c == '\n' || c == '\r' {
                    out.push(c);
                } else {
                    out.push(' ');
                }
            }
        }
    }
    if state == State::Block {
        return Err(line_col(text, block_start));
    }
    Ok(out)
}

/// Removes the " at line L column C" that serde appends: the location has its own field.
fn without_location(message: String) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    }
}

fn parse_yaml(text: &str, path: &Path) -> Result<Value, ConfigError> {
    serde_yaml::from_str::<Value>(text).map_err(|e| {
        let location = e.location().map(|l| (l.line(), l.column()));
        error(
            path,
            location,
            format!("invalid YAML: {}", without_location(e.to_string())),
        )
    })
}

/// Bracket depth beyond which a document is refused before parsing: the YAML reader takes
/// time quadratic in the depth of unclosed `[`/`{` (seconds for a few hundred kilobytes),
/// and refuses more than 128 levels anyway, so nothing it would accept is lost.
const MAX_BRACKET_DEPTH: usize = 1000;

/// Byte offset where `[`/`{` nesting (counted roughly, quotes ignored) exceeds the limit.
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_BRACKET_DEPTH {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Parses one configuration document.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Doc, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(at) = too_deep(text) {
        return Err(error(
            path,
            Some(line_col(text, at)),
            format!("nested more than {MAX_BRACKET_DEPTH} levels deep"),
        ));
    }
    if !looks_like_json(text) {
        let value = parse_yaml(text, path)?;
        return Ok(Doc {
            path: path.to_path_buf(),
            text: text.to_string(),
            value,
        });
    }
    let stripped = strip_json_comments(text).map_err(|at| {
        error(
            path,
            Some(at),
            "invalid JSON: unterminated /* comment".to_string(),
        )
    })?;
    let value = match serde_json::from_str::<Value>(&stripped) {
        Ok(v) => v,
        Err(json_err) => match serde_yaml::from_str::<Value>(&stripped) {
            Ok(v) => v,
            Err(_) => {
                return Err(error(
                    path,
                    Some((json_err.line(), json_err.column())),
                    format!("invalid JSON: {}", without_location(json_err.to_string())),
                ))
            }
        },
    };
    Ok(Doc {
        path: path.to_path_buf(),
        text: stripped,
        value,
    })
}

/// The text of a scalar as it is likely written in the file, to tell apart several
/// occurrences of one key.
pub(crate) fn scalar_hint(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(t) => scalar_hint(&t.value),
        _ => None,
    }
}

/// Where `key` is written as a mapping key in `text` (1-based line and column).
///
/// `serde_yaml::Value` keeps no positions, so this is a search: a key followed by `:`,
/// optionally quoted. When the key is written several times, the value narrows it down;
/// when it is still ambiguous, there is no location rather than a wrong one.
pub(crate) fn locate_key(text: &str, key: &str, value: Option<&str>) -> Option<(usize, usize)> {
    if key.is_empty() {
        return None;
    }
    let mut found: Vec<((usize, usize), &str)> = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(off) = line[from..].find(key) {
            let start = from + off;
            let end = start + key.len();
            from = end;
            let before = line[..start].chars().next_back();
            if !matches!(
                before,
                None | Some(' ' | '\t' | '"' | '\'' | '{' | ',' | '-')
            ) {
                continue;
            }
            let mut rest = &line[end..];
            if let Some(r) = rest.strip_prefix(['"', '\'']) {
                rest = r;
            }
            let rest = rest.trim_start();
            if let Some(value_text) = rest.strip_prefix(':') {
                let col = line[..start].chars().count() + 1;
                found.push(((line_no + 1, col), value_text));
            }
        }
    }
    if found.len() == 1 {
        return Some(found[0].0);
    }
    let value = value.filter(|v| !v.is_empty())?;
    let matching: Vec<_> = found
        .iter()
        .filter(|(_, rest)| rest.contains(value))
        .collect();
    (matching.len() == 1).then(|| matching[0].0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_blanked_and_positions_kept() {
        let text = "{ // one\n  \"a\": \"x // not a comment /* nor this */\", /* two\n three */ \"b\": 1 }";
        let out = strip_json_comments(text).unwrap();
        assert_eq!(out.len(), text.len());
        assert_eq!(out.lines().count(), text.lines().count());
        assert!(out.contains("\"x // not a comment /* nor this */\""));
        assert!(!out.contains("one"));
        assert!(!out.contains("two"));
        assert!(!out.contains("three"));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["b"], 1);
    }

    #[test]
    fn escaped_quotes_do_not_end_strings() {
        let out = strip_json_comments(r#"{"a": "say \"//hi\"" // c"#).unwrap();
        assert!(out.contains(r#""say \"//hi\"""#));
        assert!(!out.contains("// c"));
    }

    #[test]
    fn unterminated_block_comment_is_located() {
        assert_eq!(strip_json_comments("{\n  /* open"), Err((2, 3)));
    }

    #[test]
    fn yaml_errors_carry_line_and_column() {
        let err = parse("flows:\n  - filePattern: [\n", Path::new("c.yaml")).unwrap_err();
        assert!(err.location.is_some(), "{err}");
        assert!(err.message.starts_with("invalid YAML"), "{err}");
    }

    #[test]
    fn json_errors_carry_line_and_column() {
        let err = parse("{\n  \"flows\": [\n  }\n", Path::new("agent.json")).unwrap_err();
        assert_eq!(err.location.map(|l| l.0), Some(3), "{err}");
        assert!(err.message.starts_with("invalid JSON"), "{err}");
    }

    #[test]
    fn json_with_tabs_and_comments_parses() {
        let doc = parse(
            "// agent\n{\n\t\"flows\": [ /* none */ ],\n\t\"a\": 1\n}\n",
            Path::new("a.json"),
        )
        .unwrap();
        assert_eq!(doc.value["a"].as_u64(), Some(1));
    }

    #[test]
    fn locate_key_finds_unique_and_disambiguated_keys() {
        let text = "flows:\n  - filePattern: /a\n    initialPosition: bogus\n  - filePattern: /b\n    initialPosition: START_OF_FILE\n";
        assert_eq!(locate_key(text, "filePattern", Some("/b")), Some((4, 5)));
        assert_eq!(
            locate_key(text, "initialPosition", Some("bogus")),
            Some((3, 5))
        );
        assert_eq!(locate_key(text, "filePattern", None), None);
        assert_eq!(locate_key(text, "missing", None), None);
        let json = "{\n  \"cloudwatch.emitMetrics\": \"maybe\"\n}";
        assert_eq!(
            locate_key(json, "cloudwatch.emitMetrics", None),
            Some((2, 4))
        );
    }

    #[test]
    fn non_utf8_is_located() {
        let err = decode(b"a: 1\nb: \xff\n".to_vec(), Path::new("x")).unwrap_err();
        assert_eq!(err.location, Some((2, 4)));
    }
}
